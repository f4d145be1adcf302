import type { IncidentEntry, IncidentReport } from '../../schemas/incident-report';
import { cell, code, table } from './markdown';

/**
 * The incident report as Markdown, for the people who decide within 72 hours whether and what to
 * notify (GDPR Art. 33), and to file with the breach documentation (Art. 33(5)).
 */

const n = (count: number) => count.toLocaleString('en-US');

function entries(out: string[], title: string, list: readonly IncidentEntry[], withReason: boolean): void {
  out.push(`## ${title} (${n(list.length)})`, '');
  if (list.length === 0) {
    out.push('None.', '');
    return;
  }
  const headers = ['when', 'actor', 'action', 'target', 'outcome', ...(withReason ? ['reason'] : [])];
  out.push(
    ...table(
      headers,
      list.map((e) => [e.at, code(cell(e.actor)), cell(e.action), e.target === null ? '-' : code(cell(e.target)), e.outcome, ...(withReason ? [e.reason === null ? '(none given)' : cell(e.reason)] : [])]),
    ),
    '',
  );
}

export function incidentReportMarkdown(r: IncidentReport): string {
  const out: string[] = [];
  out.push('# Incident report: access in the audit log', '');
  out.push(`Period: from ${r.period.since} to ${r.period.until} (generated ${r.generatedAt}).`, '');
  out.push(
    r.chain.ok
      ? `**Audit chain: verifies** (${n(r.chain.entries)} entries in all): no entry was edited, removed or inserted without the chain key.`
      : `**Audit chain: DOES NOT VERIFY** (${n(r.chain.entries)} entries in all, ${n(r.chain.problems.length)} problem(s)): the log may have been tampered with; treat this report as incomplete.`,
    '',
  );
  for (const p of r.chain.problems) out.push(`- ${cell(p.message)}`);
  if (r.chain.problems.length) out.push('');

  out.push('## Totals', '');
  const outcomes = Object.entries(r.totals.byOutcome).map(([o, c]) => `${o} ${n(c)}`).join(', ');
  out.push(`${n(r.totals.entries)} entries in the period${outcomes ? `: ${outcomes}` : ''}.`, '');
  if (r.totals.byAction.length) {
    out.push(
      ...table(
        ['action', 'total', 'ok', 'denied', 'not_found', 'invalid', 'failed'],
        r.totals.byAction.map((a) => [cell(a.action), n(a.total), ...(['ok', 'denied', 'not_found', 'invalid', 'failed'] as const).map((o) => n(a.outcomes[o] ?? 0))]),
      ),
      '',
    );
  }

  entries(out, 'Decryptions of personal data', r.decryptions, true);
  if (r.decryptions.length) out.push(`${n(r.subjectsDecrypted)} distinct subject(s) decrypted successfully.`, '');

  out.push(`## Denied attempts, by actor (${n(r.denied.length)})`, '');
  if (r.denied.length === 0) out.push('None.', '');
  else out.push(...table(['actor', 'denied', 'actions', 'first', 'last'], r.denied.map((d) => [code(cell(d.actor)), n(d.count), cell(d.actions.join(', ')), d.first, d.last])), '');

  entries(out, 'API keys created and revoked', r.keyChanges, false);
  entries(out, 'Erasures', r.erasures, false);
  entries(out, 'Exports', r.exports, true);

  out.push(`## Actors active (${n(r.actors.length)})`, '');
  if (r.actors.length === 0) out.push('None.', '');
  else
    out.push(
      ...table(
        ['actor', 'key name', 'role', 'entries', 'decryptions', 'denied', 'first', 'last'],
        r.actors.map((a) => [
          code(cell(a.actor)),
          a.key ? `${cell(a.key.name)}${a.key.revokedAt ? ` (revoked ${a.key.revokedAt})` : ''}` : '-',
          a.key?.role ?? '-',
          n(a.entries),
          n(a.decryptions),
          n(a.denied),
          a.first,
          a.last,
        ]),
      ),
      '',
    );
  out.push('Targets are keyed pseudonyms (`subject:…`) or request and key ids: a privacy officer with a live profile id can find its entries; the report itself names nobody.');
  return `${out.join('\n')}\n`;
}

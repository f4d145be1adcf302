import {
  type ActionTotal,
  INCIDENT_REPORT_FORMAT,
  INCIDENT_REPORT_FORMAT_VERSION,
  type IncidentEntry,
  type IncidentReport,
} from '../../schemas/incident-report';
import { Role } from '../../schemas/roles';
import { verifyAuditChain } from '../audit/verify';
import type { Keys } from '../config';
import type { AuditOutcome, DbOrTrx } from '../db/types';
import type { IncidentPeriod } from './incident-period';
import { type ActionOutcomeCount, actorsInPeriod, countByActionAndOutcome, keysOfActors, type ListedRow, listedEntries } from './incident-queries';

/**
 * What the audit log says was accessed, and by whom, over a period: the facts a notification of a
 * personal data breach needs (GDPR Art. 33(3)(a): categories and approximate number of people and
 * records concerned) within its 72 hours, and the documentation Art. 33(5) asks for. Reads only; the
 * chain is verified whole, since a removal before the period hides as much as one inside it.
 */

const OUTCOMES: readonly AuditOutcome[] = ['ok', 'denied', 'not_found', 'invalid', 'failed'];

function totalsOf(counts: readonly ActionOutcomeCount[]): IncidentReport['totals'] {
  const byOutcome: Partial<Record<AuditOutcome, number>> = {};
  const byAction = new Map<string, { total: number; outcomes: Partial<Record<AuditOutcome, number>> }>();
  let entries = 0;
  for (const c of counts) {
    entries += c.count;
    byOutcome[c.outcome] = (byOutcome[c.outcome] ?? 0) + c.count;
    const action = byAction.get(c.action) ?? { total: 0, outcomes: {} };
    action.total += c.count;
    action.outcomes[c.outcome] = (action.outcomes[c.outcome] ?? 0) + c.count;
    byAction.set(c.action, action);
  }
  const ordered = (record: Partial<Record<AuditOutcome, number>>) =>
    Object.fromEntries(OUTCOMES.filter((o) => record[o] !== undefined).map((o) => [o, record[o] as number])) as Partial<Record<AuditOutcome, number>>;
  const actions: ActionTotal[] = [...byAction]
    .map(([action, a]) => ({ action, total: a.total, outcomes: ordered(a.outcomes) }))
    .sort((a, b) => b.total - a.total || a.action.localeCompare(b.action));
  return { entries, byOutcome: ordered(byOutcome), byAction: actions };
}

function entryOf(row: ListedRow): IncidentEntry {
  return { seq: row.seq, at: row.at.toISOString(), actor: row.actor, action: row.action, target: row.target, outcome: row.outcome, reason: row.reason };
}

export async function buildIncidentReport(db: DbOrTrx, keys: Keys, period: IncidentPeriod, now = new Date()): Promise<IncidentReport> {
  // One after the other: the embedded database has a single connection.
  const counts = await countByActionAndOutcome(db, period);
  const listed = await listedEntries(db, period);
  const actors = await actorsInPeriod(db, period);
  const chain = await verifyAuditChain(db, keys);
  const apiKeys = await keysOfActors(db, actors.map((a) => a.actor));
  const decryptions = listed.filter((r) => r.decrypted);
  return {
    format: INCIDENT_REPORT_FORMAT,
    formatVersion: INCIDENT_REPORT_FORMAT_VERSION,
    generatedAt: now.toISOString(),
    period: { since: period.since.toISOString(), until: period.until.toISOString() },
    totals: totalsOf(counts),
    decryptions: decryptions.map(entryOf),
    subjectsDecrypted: new Set(decryptions.filter((r) => r.outcome === 'ok' && r.target !== null).map((r) => r.target)).size,
    denied: actors
      .filter((a) => a.denied > 0)
      .sort((a, b) => b.denied - a.denied || a.actor.localeCompare(b.actor))
      .map((a) => ({
        actor: a.actor,
        count: a.denied,
        actions: a.deniedActions ?? [],
        first: (a.firstDenied ?? a.first).toISOString(),
        last: (a.lastDenied ?? a.last).toISOString(),
      })),
    keyChanges: listed.filter((r) => r.action === 'keys.create' || r.action === 'keys.revoke').map(entryOf),
    erasures: listed.filter((r) => r.action === 'subject.erase').map(entryOf),
    exports: listed.filter((r) => r.action === 'subject.export').map(entryOf),
    actors: actors.map((a) => {
      const key = a.actor.startsWith('key:') ? apiKeys.get(a.actor.slice(4).toLowerCase()) : undefined;
      const role = key ? Role.safeParse(key.role) : undefined;
      return {
        actor: a.actor,
        key: key && role?.success ? { id: key.id, name: key.name, role: role.data, revokedAt: key.revoked_at ? key.revoked_at.toISOString() : null } : null,
        entries: a.entries,
        decryptions: a.decryptions,
        denied: a.denied,
        first: a.first.toISOString(),
        last: a.last.toISOString(),
      };
    }),
    chain: { ok: chain.ok, entries: chain.entries, problems: chain.problems.map((p) => ({ seq: p.seq, message: p.message })) },
  };
}

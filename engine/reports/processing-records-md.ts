import type { ProcessingRecords } from '../../schemas/processing-records';
import { cell, code, table } from './markdown';

/**
 * The records of processing as a Markdown document for people: a data protection officer's file,
 * or an answer to a supervisory authority (GDPR Art. 30(4)). The same content as the JSON form, in
 * the order of Art. 30(1).
 */
export function processingRecordsMarkdown(r: ProcessingRecords): string {
  const out: string[] = [];
  const line = (text = '') => out.push(text);

  line('# Records of processing activities (GDPR Art. 30)');
  line();
  line(`Generated ${r.generatedAt} from the rule set ${code(r.rulesVersion.slice(0, 12))} and the running configuration.`);
  line();
  line(`**Controller** (Art. 30(1)(a)): ${r.controller}.`);
  line();

  line('## Purposes of the processing (Art. 30(1)(b))');
  for (const p of r.purposes) {
    line();
    line(`### ${p.name}`);
    line();
    line(`- **Description**: ${p.description.en ?? Object.values(p.description)[0] ?? ''}`);
    for (const [lang, text] of Object.entries(p.description)) if (lang !== 'en') line(`  - (${lang}) ${text}`);
    line(`- **Legal basis**: ${p.legalBasis} (${p.legalBasisArticle})${p.doubleOptIn ? '; granted only by a confirmed double opt-in' : ''}`);
    line(`- **Retention**: ${p.retention} (${p.retentionText})`);
    line(`- **Allows**: ${p.allows.map((a) => `${code(a.capability)} (${a.meaning})`).join('; ') || 'nothing'}`);
    line(`- **Campaigns**: ${p.campaigns.map(code).join(', ') || 'none'}`);
    line(`- **Segments built under it**: ${p.segments.map(code).join(', ') || 'none'}`);
  }
  line();

  line('### Campaigns');
  line();
  if (r.campaigns.length === 0) line('No campaigns.');
  else
    out.push(
      ...table(
        ['campaign', 'name', 'purposes', 'channels', 'trigger'],
        r.campaigns.map((c) => [code(c.id), cell(c.name), c.purposes.join(', '), c.channels.join(', ') || 'none', `${c.trigger}${c.behavioural ? ' (behavioural)' : ''}`]),
      ),
    );
  line();
  line('### Segments');
  line();
  if (r.segments.length === 0) line('No segments.');
  else
    out.push(
      ...table(
        ['segment', 'name', 'profiling', 'purposes'],
        r.segments.map((s) => [code(s.id), cell(s.name), s.profiling ? 'yes' : 'no (a list)', s.purposes.join(', ') || '-']),
      ),
    );
  line();

  line('## Categories of data subjects (Art. 30(1)(c))');
  line();
  for (const s of r.dataSubjects) line(`- **${s.category}**: ${s.description}`);
  line();

  line('## Categories of personal data (Art. 30(1)(c))');
  line();
  out.push(
    ...table(
      ['category', 'fields', 'identifying', 'stored'],
      r.personalData.map((d) => [`**${cell(d.category)}**: ${cell(d.description)}`, cell(d.fields.join('; ') || 'none'), d.identifying ? 'yes' : 'no', cell(d.storage)]),
    ),
  );
  line();

  line('## Recipients (Art. 30(1)(d))');
  line();
  for (const rec of r.recipients) line(`- **${rec.name}** (${code(rec.address)}): ${rec.receives}.`);
  line();

  line('## Transfers to third countries (Art. 30(1)(e))');
  line();
  line(`${r.transfers.statement}.`);
  line();

  line('## Retention periods (Art. 30(1)(f))');
  line();
  out.push(...table(['data', 'period', 'from'], r.retention.map((e) => [cell(e.data), cell(e.period), cell(e.source)])));
  line();

  line('## Security measures (Art. 30(1)(g), Art. 32(1))');
  line();
  for (const m of r.security) line(`- **${m.measure}**: ${m.description}.`);
  line();
  line('Organisational measures (who holds which role and key, training, incident procedure) are the controller\'s to add.');
  return `${out.join('\n')}\n`;
}

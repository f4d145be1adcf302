import type { Command } from 'commander';
import { CampaignReportParams } from '../../schemas/campaign-report';
import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { campaignHasHistory, campaignReportSnapshot } from '../../engine/reports/campaign-report';
import { campaignReportText } from '../../engine/reports/campaign-report-text';
import { parseIncidentPeriod, PERIOD_RULE } from '../../engine/reports/incident-period';
import { buildIncidentReport } from '../../engine/reports/incident-report';
import { incidentReportMarkdown } from '../../engine/reports/incident-report-md';
import { buildProcessingRecords } from '../../engine/reports/processing-records';
import { processingRecordsMarkdown } from '../../engine/reports/processing-records-md';
import { processingRecordsInput } from '../../engine/reports/records-input';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { loadRules } from '../../engine/runtime/rules';
import { auditCommand } from './audit-actor';
import type { CommandContext } from './commands';
import type { CommandWiring } from './rules-commands';

/**
 * `consentflow report processing | incident`: the records of processing (GDPR Art. 30) from the
 * rule files and the configuration alone (no database, Redis or keys), and the incident report
 * (Art. 33) from the audit log.
 */

type Format = 'md' | 'json';

function formatOf(value: string | undefined): Format {
  if (value === undefined) return 'md';
  if (value !== 'md' && value !== 'json') throw new AppError('BAD_REQUEST', `--format '${value}': expected md or json`);
  return value;
}

/** Markdown ends with its own newline; `print` adds one. */
const printDocument = (ctx: CommandContext, text: string) => ctx.print(text.replace(/\n$/, ''));

export async function reportProcessingCommand(ctx: CommandContext, options: { format?: string }): Promise<number> {
  const format = formatOf(options.format);
  const records = buildProcessingRecords(processingRecordsInput(ctx.config, loadRules(ctx.config)));
  printDocument(ctx, format === 'json' ? JSON.stringify(records, null, 2) : processingRecordsMarkdown(records));
  return 0;
}

export async function reportIncidentCommand(ctx: CommandContext, options: { since?: string; until?: string; format?: string }): Promise<number> {
  const format = formatOf(options.format);
  const period = parseIncidentPeriod(options, new Date());
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const report = await buildIncidentReport(databases.db, keys, period);
    // Reading the audit log is itself recorded, as GET /admin/v1/audit is; before the report is shown.
    await auditCommand(databases.db, keys, { action: 'audit.read', outcome: 'ok', detail: { report: 'incident', since: report.period.since, until: report.period.until } }, ctx.log);
    printDocument(ctx, format === 'json' ? JSON.stringify(report, null, 2) : incidentReportMarkdown(report));
    if (!report.chain.ok) process.stderr.write(`consentflow: the audit chain does not verify (${report.chain.problems.length} problem(s)); the report may be incomplete\n`);
    return 0;
  });
}

/**
 * `consentflow report campaign ID`: what a campaign did, in counts (engine/reports/campaign-report.ts),
 * as GET /admin/v1/campaigns/:id/stats answers it. Counts only: nothing to audit as a read of a person.
 */
export async function reportCampaignCommand(ctx: CommandContext, id: string, options: { json?: boolean }): Promise<number> {
  const params = CampaignReportParams.safeParse({ id });
  if (!params.success) throw new AppError('BAD_REQUEST', `campaign '${id}': ${params.error.issues[0]?.message ?? 'expected a campaign id'}`);
  const rules = loadRules(ctx.config);
  const campaign = rules.compiled.campaigns.get(params.data.id);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    if (!campaign && !(await campaignHasHistory(databases.db, params.data.id))) {
      const known = [...rules.compiled.campaigns.keys()].sort();
      throw new AppError('NOT_FOUND', `no campaign ${params.data.id}: not in the rule files and nothing recorded for it (campaigns: ${known.join(', ') || 'none'})`);
    }
    const report = await campaignReportSnapshot(databases.db, params.data.id, campaign);
    printDocument(ctx, options.json ? JSON.stringify(report, null, 2) : campaignReportText(report));
    return 0;
  });
}

export function registerReportCommands(program: Command, wiring: CommandWiring): void {
  const report = program
    .command('report')
    .description('reports: what a campaign did (counts); for the privacy officer, records of processing (GDPR Art. 30), incidents (Art. 33)');
  report
    .command('campaign')
    .description('what a campaign did, in counts only: enrolled; per send step scheduled, sent, skipped by reason, opened, clicked, unsubscribed, bounced; exit-goal conversions')
    .argument('<id>', 'the campaign id (its file name in rules/campaigns without .yaml)')
    .option('--json', 'print JSON (the shape of GET /admin/v1/campaigns/:id/stats)')
    .action(wiring.run((id: string, options: { json?: boolean }) => reportCampaignCommand(wiring.context(), id, options)));
  report
    .command('processing')
    .description('the records of processing activities (GDPR Art. 30) from the rule files and the configuration: purposes, data, recipients, retention, security')
    .option('--format <format>', 'md (default) or json')
    .action(wiring.run((options: { format?: string }) => reportProcessingCommand(wiring.context(), options)));
  report
    .command('incident')
    .description('what the audit log says was accessed, and by whom, over a period (GDPR Art. 33: notify within 72 hours), and whether the audit chain verifies')
    .option('--since <time>', `start of the period (required): ${PERIOD_RULE.replace(/^expected /, '')}`)
    .option('--until <time>', 'end of the period (default: now), in the same forms as --since')
    .option('--format <format>', 'md (default) or json')
    .action(wiring.run((options: { since?: string; until?: string; format?: string }) => reportIncidentCommand(wiring.context(), options)));
}

import fs from 'node:fs';
import type { Command } from 'commander';
import { recordRuleSet } from '../../engine/automation/rule-set-versions';
import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { importConsent } from '../../engine/import/consent-evidence';
import { type ImportReport, SKIP_REASONS, skippedByReason } from '../../engine/import/report';
import { ImportInterrupted, runImport } from '../../engine/import/run-import';
import { ImportSourceName } from '../../engine/import/sources';
import { batchDeps } from '../../engine/runtime/batch';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { loadRules } from '../../engine/runtime/rules';
import { auditCommand } from './audit-actor';
import type { CommandContext } from './commands';
import type { CommandWiring } from './rules-commands';

/**
 * `consentflow import FILE.csv --source NAME [--consent PURPOSE:NOTICE@VERSION] [--dry-run] [--json]`.
 * Exit codes: 0 every row accepted or skipped for a reason; 2 some rows invalid (the others went
 * in); 65 the file cannot be imported as a whole (its header), nothing written; 66 the file cannot
 * be read; 1 bad options, or the import stopped part-way (the batches before stay; run it again);
 * 78 bad configuration.
 */

interface ImportCommandOptions {
  source: string;
  consent?: string;
  dryRun?: boolean;
  json?: boolean;
}

export const EXIT_INVALID_ROWS = 2;
const EX_DATAERR = 65;
const EX_NOINPUT = 66;

export function registerImportCommand(program: Command, wiring: CommandWiring): void {
  program
    .command('import')
    .description('add people from a CSV file (header row: email, userId, traits from rules/properties.yaml); exit 2 if some rows are invalid')
    .argument('<file>', 'the CSV file: RFC 4180, UTF-8, a header row naming the columns')
    .requiredOption('--source <name>', 'where the people come from (e.g. crm-2024); every row gets the source import:NAME, reused by later imports')
    .option('--consent <spec>', 'PURPOSE[,PURPOSE]:NOTICE@VERSION: the consent every valid row grants and the notice the people were shown (method import)')
    .option('--dry-run', 'check every row and report, but write nothing')
    .option('--json', 'print the report as JSON')
    .action(wiring.run((file: string, options: ImportCommandOptions) => importCommand(wiring.context(), file, options)));
}

export async function importCommand(ctx: CommandContext, file: string, options: ImportCommandOptions): Promise<number> {
  const sourceName = ImportSourceName.safeParse(options.source);
  if (!sourceName.success) throw new AppError('VALIDATION_FAILED', `--source: ${sourceName.error.issues[0]?.message ?? 'invalid'}`);
  const rules = loadRules(ctx.config);
  const consent = options.consent === undefined ? undefined : importConsent(rules.purposes, options.consent);
  if (consent && !consent.ok) throw new AppError('VALIDATION_FAILED', consent.message);
  const readable = await fs.promises.open(file, 'r').then(
    async (handle) => {
      const stat = await handle.stat();
      await handle.close();
      return stat.isFile() ? undefined : 'not a regular file';
    },
    (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : (err.code ?? err.message)),
  );
  if (readable !== undefined) {
    process.stderr.write(`consentflow: cannot read ${file}: ${readable}; nothing was imported\n`);
    return EX_NOINPUT;
  }
  const keys = loadKeys(ctx.config, ctx.log);
  const progress = progressBar(file);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    // Decisions the rules make for imported people name the rule set version they were made under.
    if (!options.dryRun) await recordRuleSet(databases.db, rules.ruleSet);
    try {
      const result = await runImport(
        { databases, keys, policy: rules.properties, catalog: rules.purposes, batch: batchDeps({ databases, keys, rules, config: ctx.config }) },
        {
          file,
          sourceName: sourceName.data,
          consent: consent?.ok ? consent.change : undefined,
          dryRun: options.dryRun === true,
          ...(progress ? { onProgress: progress.update } : {}),
          // Writing personal data is audited with the batch it wrote (docs/security.md).
          audit: (trx, entry) => auditCommand(trx, keys, { action: 'subject.import', target: entry.target, outcome: 'ok', detail: entry.detail }),
        },
      );
      progress?.done();
      if (!result.ok) {
        if (options.json) printReport(ctx, result.report, true);
        process.stderr.write(`consentflow: ${file}: ${result.message}\n`);
        return EX_DATAERR;
      }
      printReport(ctx, result.report, options.json === true);
      return result.report.invalid.length > 0 ? EXIT_INVALID_ROWS : 0;
    } catch (err) {
      progress?.done();
      if (!(err instanceof ImportInterrupted)) throw err;
      printReport(ctx, err.report, options.json === true);
      process.stderr.write(`consentflow: ${err.message}; the batches before it are written: run the same command again, rows already imported are recognized\n`);
      return 1;
    }
  });
}

/** A progress line on stderr, only when stderr is a terminal (never in a log or a pipe). */
function progressBar(file: string): { update: (p: { bytesRead: number; totalBytes: number; rows: number }) => void; done: () => void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  let shown = false;
  return {
    update: ({ bytesRead, totalBytes, rows }) => {
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      const share = totalBytes > 0 ? Math.min(1, bytesRead / totalBytes) : 1;
      const width = 30;
      const filled = Math.round(share * width);
      process.stderr.write(`\r\u001b[2Kimporting ${file} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.round(share * 100)}% ${rows.toLocaleString('en-US')} rows`);
    },
    done: () => {
      if (shown) process.stderr.write('\r\u001b[2K');
    },
  };
}

const n = (count: number) => count.toLocaleString('en-US');
const LISTED_LINES = 20;
const LISTED_INVALID = 100;

function lines(list: readonly number[]): string {
  const shown = list.slice(0, LISTED_LINES).join(', ');
  return list.length > LISTED_LINES ? `${shown}, … and ${n(list.length - LISTED_LINES)} more` : shown;
}

export function printReport(ctx: CommandContext, report: ImportReport, json: boolean): void {
  if (json) {
    ctx.print(JSON.stringify(report));
    return;
  }
  const source = `source "${report.source.name}"${report.source.id ? ` (${report.source.id}${report.source.created ? ', created now' : ''})` : report.dryRun ? ' (would be created)' : ''}`;
  ctx.print(report.dryRun ? `dry run of ${report.file} as ${source}: nothing was written` : `import of ${report.file} as ${source}`);
  const skipped = report.skipped.length;
  const verb = report.dryRun ? 'would be accepted' : 'accepted';
  const people = report.newPeople !== null && report.accepted > 0 ? ` (${n(report.newPeople)} new people)` : '';
  ctx.print(`rows: ${n(report.rows)} read, ${n(report.accepted)} ${verb}${people}, ${n(skipped)} skipped, ${n(report.invalid.length)} invalid`);
  if (report.consent) {
    ctx.print(`consent ${report.dryRun ? 'to record' : 'recorded'} for each accepted row: ${report.consent.purposes.join(', ')} (notice ${report.consent.notice.id} version ${report.consent.notice.version}, method import)`);
  }
  if (skipped > 0) {
    ctx.print('skipped:');
    for (const g of skippedByReason(report)) {
      ctx.print(`  ${SKIP_REASONS[g.reason]}${g.detail ? ` (${g.detail})` : ''}: ${n(g.count)} (line${g.count === 1 ? '' : 's'} ${lines(g.lines)})`);
    }
  }
  if (report.invalid.length > 0) {
    ctx.print('invalid:');
    for (const row of report.invalid.slice(0, LISTED_INVALID)) ctx.print(`  line ${row.line}${row.column ? `, ${row.column}` : ''}: ${row.message}`);
    if (report.invalid.length > LISTED_INVALID) ctx.print(`  … and ${n(report.invalid.length - LISTED_INVALID)} more (--json lists every row)`);
  }
  if (report.interrupted) ctx.print(`interrupted: ${report.interrupted}`);
  ctx.print(`took ${(report.durationMs / 1000).toFixed(1)} s`);
}

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { AppError } from '../../engine/errors';
import { loadRuleSet } from '../../engine/rules/load';
import { formatTimeline, parseSimEvents, renderSimulationHtml, simulate } from '../../engine/rules/simulate';
import type { CommandContext } from './commands';
import type { CommandWiring } from './rules-commands';

/**
 * `consentflow rules simulate`: what the rules would do with a log of events, in virtual time, with
 * no PostgreSQL, Redis, SMTP or keys, so marketers review a change in CI before it goes live.
 */

export interface RulesSimulateOptions {
  readonly events: string;
  readonly rules?: string;
  readonly from?: string;
  readonly until?: string;
  readonly json?: boolean;
  readonly html?: string;
}

/** Adds `simulate` to the `rules` command group. */
export function registerRulesSimulateCommand(rules: Command, wiring: CommandWiring): void {
  rules
    .command('simulate')
    .description('replay events (JSON lines, Segment format) through the rules in virtual time and print what would happen to each person, and when')
    .requiredOption('--events <file>', 'the events, one JSON object per line, each with a timestamp')
    .option('--rules <dir>', 'the rules directory (default: RULES_DIR, else ./rules)')
    .option('--from <time>', 'start of the simulation (ISO 8601); earlier events are history only. Default: the first event')
    .option('--until <time>', 'end of the simulation (ISO 8601). Default: until nothing is left to happen; broadcasts tick until the last event')
    .option('--json', 'print the timeline as JSON')
    .option('--html <file>', 'also write the timeline as a self-contained HTML page to FILE (a lane per person, and a table of the same events)')
    .action(wiring.run((options: RulesSimulateOptions) => rulesSimulateCommand(wiring.context(), options)));
}

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

function parseTime(option: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!ISO_DATE_TIME.test(value) || Number.isNaN(ms)) {
    throw new AppError('BAD_REQUEST', `${option} '${value}': expected an ISO 8601 date-time with a time zone, e.g. 2026-11-29T10:00:00Z`);
  }
  return new Date(ms);
}

/** Relative to the working directory when inside it, else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

export async function rulesSimulateCommand(ctx: CommandContext, options: RulesSimulateOptions): Promise<number> {
  const from = parseTime('--from', options.from);
  const until = parseTime('--until', options.until);
  if (from && until && until < from) throw new AppError('BAD_REQUEST', '--until: expected a time after --from');
  const root = options.rules === undefined ? ctx.config.rulesDir : path.resolve(options.rules);
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) {
    throw new AppError('CONFIG_INVALID', `no rules directory at ${displayPath(root)}${options.rules === undefined ? ' (RULES_DIR)' : ''}`);
  }
  const htmlFile = options.html === undefined ? undefined : path.resolve(options.html);
  // Before the simulation runs: a path that cannot be written is said at once.
  if (htmlFile) checkWritable(htmlFile);
  const eventsFile = path.resolve(options.events);
  let text: string;
  try {
    text = fs.readFileSync(eventsFile, 'utf8');
  } catch (err) {
    throw new AppError('BAD_REQUEST', `--events ${displayPath(eventsFile)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }

  const loaded = loadRuleSet(root);
  if (!loaded.ok) {
    for (const p of loaded.problems) process.stderr.write(`${displayPath(path.join(root, p.file))}:${p.line}:${p.column} ${p.message}\n`);
    process.stderr.write('the rules have problems (see `consentflow rules check`); nothing simulated\n');
    return 1;
  }
  const parsed = parseSimEvents(text, displayPath(eventsFile), loaded.ruleSet.purposes);
  if (!parsed.ok) {
    for (const problem of parsed.problems) process.stderr.write(`${problem}\n`);
    return 1;
  }
  const timeline = simulate(loaded.ruleSet, parsed.events, { ...(from ? { from } : {}), ...(until ? { until } : {}) });
  // The page first: if it cannot be written, the command fails before printing anything.
  if (htmlFile) {
    const { campaigns, segments } = loaded.ruleSet;
    const html = renderSimulationHtml(timeline, {
      source: path.basename(eventsFile),
      campaignNames: new Map([...campaigns].map(([id, c]) => [id, c.file.name])),
      segmentNames: new Map([...segments].map(([id, s]) => [id, s.file.name])),
    });
    writeFileAtomically(htmlFile, html, '--html');
  }
  if (options.json) ctx.print(JSON.stringify(timeline, null, 2));
  else for (const line of formatTimeline(timeline)) ctx.print(line);
  return 0;
}

function cannotWrite(file: string, why: string, option = '--html'): AppError {
  return new AppError('BAD_REQUEST', `${option} ${displayPath(file)}: ${why}`);
}

function ioReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such directory';
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return 'cannot write there (permission denied)';
  if (code === 'EISDIR') return 'is a directory: expected a file name';
  if (code === 'ENOTDIR') return 'a part of the path is not a directory';
  return (err as Error).message;
}

/** The directory must exist and be writable, and FILE must not be a directory. */
function checkWritable(file: string): void {
  const dir = path.dirname(file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    throw cannotWrite(file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? `no such directory ${displayPath(dir)}` : ioReason(err));
  }
  if (!stat.isDirectory()) throw cannotWrite(file, `${displayPath(dir)} is not a directory`);
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw cannotWrite(file, `cannot write in ${displayPath(dir)} (permission denied)`);
  }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw cannotWrite(file, 'is a directory: expected a file name');
}

/**
 * Written to a temporary file beside FILE, then renamed over it: a reader (or a failure halfway)
 * sees the old page or the new one, never half of one.
 */
export function writeFileAtomically(file: string, content: string, option: string): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(temporary, content, { encoding: 'utf8', flag: 'wx', mode: 0o644 });
    fs.renameSync(temporary, file);
  } catch (err) {
    try {
      fs.rmSync(temporary, { force: true });
    } catch {
      // Nothing more to do: the error below names the path.
    }
    throw cannotWrite(file, ioReason(err), option);
  }
}

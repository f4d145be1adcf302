import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { AppError } from '../../engine/errors';
import { loadRuleSet } from '../../engine/rules/load';
import { entriesByPerson, parseSimEvents, simulate, type Timeline, type TimelineEntry } from '../../engine/rules/simulate';
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
  if (options.json) ctx.print(JSON.stringify(timeline, null, 2));
  else for (const line of formatTimeline(timeline)) ctx.print(line);
  return 0;
}

const time = (d: Date) => d.toISOString().replace('.000Z', 'Z');

/** `campaign · step → template`, or `segment (by campaign · step)` for a step's segment change. */
function subject(e: TimelineEntry): string {
  const step = e.step === undefined ? '' : ` · ${e.step}`;
  if (e.segment !== undefined) return e.campaign === undefined ? e.segment : `${e.segment} (by ${e.campaign}${step})`;
  return `${e.campaign ?? ''}${step}${e.template === undefined ? '' : ` → ${e.template}`}`;
}

/** Per person, one line per entry: time, what happened, to which campaign or segment, and why. */
export function formatTimeline(timeline: Timeline): string[] {
  const byPerson = entriesByPerson(timeline);
  const span = timeline.from || timeline.until ? ` · ${timeline.from ? time(timeline.from) : '…'} to ${timeline.until ? time(timeline.until) : '…'}` : '';
  const out = [`rules version ${timeline.version.slice(0, 8)} · ${byPerson.size} ${byPerson.size === 1 ? 'person' : 'people'} · ${timeline.entries.length} entries${span}`];
  for (const [person, entries] of byPerson) {
    out.push('', person);
    if (entries.length === 0) out.push('  nothing happens');
    for (const e of entries) out.push(`  ${time(e.at)}  ${e.kind.padEnd(15)}  ${subject(e)}  — ${e.reason}`);
  }
  return out;
}

/**
 * `npm run bench`: the whole benchmark suite (issue 9). Runs the ceilings, then each scenario's
 * script, one after another (never two at once: they would share the machine's cores), each as its
 * own process with its output shown; gathers what each wrote with `--results` (scripts/bench/results.ts),
 * prints one summary table and writes:
 * - bench/results.json: the machine, versions, date, command, every ScenarioResults and every ceiling;
 * - docs/benchmarks.md: the suite's section at the top (the summary table; each script rewrites its own
 *   section below as it runs);
 * - docs/benchmarks.svg: throughput beside ceilings, latency against targets (chart.ts).
 *
 * `npm run bench -- --quick`: the CI smoke. Each script in its quick form (with `--no-docs`), the
 * results in bench/results-quick.json (not committed), docs and chart left alone; quick figures are
 * not judged. A missed target is a figure, not a failure: the suite exits non-zero only when a
 * script fails (or outlives its time limit). A script whose file does not exist is reported as not run.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { chartSvg } from './chart';
import { ADMIN_URL, machine, REDIS_URL, ROOT } from './harness';
import { consoleTable, docsSection, noteLines, summaryRows, writeSuiteSection } from './suite-report';
import { readResults, type ScriptOutcome, type SuiteRun } from './suite-run';

interface Script {
  readonly name: string;
  /** Why its quick form is not part of `--quick` (too long for the CI smoke); unset: it runs. */
  readonly quickSkip?: string;
}

/** In the issue's order; `ceilings` first, so every scenario is read against ceilings of the same run. */
const SCRIPTS: readonly Script[] = [
  { name: 'ceilings' },
  { name: 'ingest' },
  {
    name: 'pipeline',
    quickSkip: 'its quick form took 3 minutes in the suite (seeding, 20 s of load, the latency and growth runs); run `npm run bench:pipeline -- --quick` alone',
  },
  { name: 'rules' },
  { name: 'email' },
  {
    name: 'delayed-sends',
    quickSkip: 'its quick form took 1.5 minutes in the suite (5,000 sends scheduled, then delivered once due); run `npm run bench:delayed-sends -- --quick` alone',
  },
  { name: 'erasure' },
];

const quick = process.argv.includes('--quick');
/** A script still running after this is stopped and counted as failed (a hang must not stall CI). */
const TIME_LIMIT_S = quick ? 300 : 3_600;
const RESULTS_FILE = path.join(ROOT, 'bench', quick ? 'results-quick.json' : 'results.json');
const DOCS_FILE = path.join(ROOT, 'docs', 'benchmarks.md');
const CHART_FILE = path.join(ROOT, 'docs', 'benchmarks.svg');

const say = (line: string) => process.stdout.write(`${line}\n`);

let current: ChildProcess | undefined;

/** Stops the running script and whatever it started (it leads its own process group). */
function stopCurrent(signal: NodeJS.Signals): void {
  if (current?.pid === undefined || current.exitCode !== null || current.signalCode !== null) return;
  try {
    process.kill(-current.pid, signal);
  } catch {
    // already gone
  }
}

function runScript(file: string, args: readonly string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    current = child;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      say(`suite: ${file} still running after ${TIME_LIMIT_S} s: stopping it`);
      stopCurrent('SIGTERM');
      setTimeout(() => stopCurrent('SIGKILL'), 10_000).unref();
    }, TIME_LIMIT_S * 1_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      resolve({ code, signal, timedOut });
    });
  });
}

async function runOne(script: Script, index: number, dir: string): Promise<ScriptOutcome> {
  const file = `scripts/bench/${script.name}.ts`;
  const base = { script: script.name, file };
  const heading = `[${index + 1}/${SCRIPTS.length}] ${script.name}`;
  if (!fs.existsSync(path.join(ROOT, file))) {
    say(`\n━━ ${heading}: not run, ${file} does not exist`);
    return { ...base, status: 'not run', reason: `${file} does not exist`, seconds: 0, results: [] };
  }
  if (quick && script.quickSkip) {
    say(`\n━━ ${heading}: skipped in --quick: ${script.quickSkip}`);
    return { ...base, status: 'skipped', reason: `--quick: ${script.quickSkip}`, seconds: 0, results: [] };
  }
  const resultsFile = path.join(dir, `${script.name}.json`);
  const args = [...(quick ? ['--quick', '--no-docs'] : []), '--results', resultsFile];
  say(`\n━━ ${heading}: node --import tsx ${file} ${args.join(' ')}`);
  const started = performance.now();
  const exit = await runScript(file, args);
  const seconds = (performance.now() - started) / 1_000;
  say(`━━ ${heading}: ${exit.code === 0 ? 'done' : `exited with ${exit.code ?? exit.signal}`} in ${seconds.toFixed(1)} s`);
  if (exit.code !== 0) {
    const reason = exit.timedOut ? `stopped after ${TIME_LIMIT_S} s` : `exited with ${exit.code ?? exit.signal}`;
    return { ...base, status: 'failed', reason, seconds, results: [] };
  }
  try {
    const results = readResults(resultsFile);
    if (results === undefined) return { ...base, status: 'no results', reason: 'it wrote no --results file', seconds, results: [] };
    return { ...base, status: 'ok', seconds, results };
  } catch (err) {
    return { ...base, status: 'failed', reason: (err as Error).message, seconds, results: [] };
  }
}

async function versions(): Promise<SuiteRun['versions']> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  let postgresql = 'unknown';
  try {
    await client.connect();
    postgresql = (await client.query<{ server_version: string }>('show server_version')).rows[0]?.server_version ?? postgresql;
  } catch (err) {
    say(`suite: PostgreSQL version not read: ${(err as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  let redisVersion = 'unknown';
  try {
    await redis.connect();
    redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? redisVersion;
  } catch (err) {
    say(`suite: Redis version not read: ${(err as Error).message}`);
  } finally {
    redis.disconnect();
  }
  return { node: process.version, postgresql, redis: redisVersion };
}

function commit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      say(`suite: ${signal}: stopping`);
      stopCurrent('SIGTERM');
      process.exit(130);
    });
  }
  const date = new Date().toISOString();
  const command = `npm run bench${quick ? ' -- --quick' : ''}`;
  const started = performance.now();
  say(`${command}: ${SCRIPTS.length} scripts, one after another, on ${machine()}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-bench-suite-'));
  const outcomes: ScriptOutcome[] = [];
  try {
    for (const [i, script] of SCRIPTS.entries()) outcomes.push(await runOne(script, i, dir));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const [ceilings, ...scenarios] = outcomes as [ScriptOutcome, ...ScriptOutcome[]];
  const head = commit();
  const run: SuiteRun = {
    date,
    command,
    quick,
    machine: machine(),
    versions: await versions(),
    ...(head ? { commit: head } : {}),
    seconds: (performance.now() - started) / 1_000,
    ceilings: ceilings.results,
    scenarios: ceilings.status === 'ok' ? scenarios : [ceilings, ...scenarios],
  };

  say(`\n${consoleTable(summaryRows(run))}\n`);
  for (const line of noteLines(run)) say(`- ${line}`);
  fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  fs.writeFileSync(RESULTS_FILE, `${JSON.stringify(run, null, 2)}\n`);
  say(`\nresults: ${path.relative(ROOT, RESULTS_FILE)}`);
  if (quick) {
    say('--quick: docs/benchmarks.md and docs/benchmarks.svg left unchanged');
  } else {
    fs.writeFileSync(CHART_FILE, chartSvg(run));
    writeSuiteSection(DOCS_FILE, docsSection(run, 'benchmarks.svg', '../bench/results.json'));
    say(`chart: ${path.relative(ROOT, CHART_FILE)}; summary: ${path.relative(ROOT, DOCS_FILE)} (between <!-- bench:suite:start --> and <!-- bench:suite:end -->)`);
  }
  const failed = outcomes.filter((o) => o.status === 'failed');
  say(`suite: ${Math.round(run.seconds)} s; ${outcomes.filter((o) => o.status === 'ok').length} of ${outcomes.length} scripts produced figures${failed.length ? `; failed: ${failed.map((o) => o.script).join(', ')}` : ''}`);
  process.exitCode = failed.length > 0 ? 1 : 0;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench suite failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

/**
 * The suite's ceilings (`npm run bench` runs this first): what the machine does in this run with
 * the engine's work taken out, so each scenario's figure can be read as a ratio.
 * - a bare fastify route answering the GIF (scripts/bench/bare-gif-server.ts), under the load the
 *   ingest benchmark uses (autocannon, 50 connections, no pipelining);
 * - raw BullMQ: no-op jobs added with `addBulk` and drained by a no-op Worker (ceiling-bullmq.ts);
 * - raw PostgreSQL: multi-row insert, `unnest` and `COPY` into an unindexed table (ceiling-postgres.ts);
 * - `redis-benchmark` for SET, GET and LPUSH (ceiling-redis.ts);
 * - the SMTP sink's receive rate with the minimal client of `bench:email` (smtp-ceiling.ts), with a
 *   stand-in message of the digest's size: composing each message, and sending bytes built once.
 * Prints a table; `--results FILE` writes the figures (scripts/bench/results.ts), every one with
 * `met: null`. `--quick`: shorter runs. Writes nothing to docs/benchmarks.md (the suite does).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../engine/config';
import { measureBullmq } from './ceiling-bullmq';
import { measurePostgres } from './ceiling-postgres';
import { hasRedisBenchmark, measureRedis } from './ceiling-redis';
import { createBenchDatabase, freePort, machine, ROOT, startProcess, stopProcess } from './harness';
import { CONNECTIONS, load } from './http-load';
import { type Figure, type ScenarioResults, writeResults } from './results';
import { type MinimalClientSpec, minimalClientRun } from './smtp-ceiling';
import { startSmtpSink } from './smtp-sink';

const quick = process.argv.includes('--quick');
const HTTP_S = quick ? 3 : 10;
const BULLMQ_JOBS = quick ? 5_000 : 30_000;
const BULLMQ_CONCURRENCY = [1, 50] as const;
const PG_ROWS = quick ? 20_000 : 200_000;
const REDIS_REQUESTS = quick ? 20_000 : 100_000;
const SMTP_S = quick ? 3 : 10;

const say = (line: string) => process.stdout.write(`${line}\n`);

/** What to undo if the script is stopped midway (the suite stops a script that outlives its limit, or on Ctrl-C). */
const pending = new Set<() => Promise<void>>();
async function undoable<T>(undo: () => Promise<void>, run: () => Promise<T>): Promise<T> {
  pending.add(undo);
  try {
    return await run();
  } finally {
    pending.delete(undo);
    await undo();
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`ceilings: ${signal}: cleaning up`);
    void Promise.allSettled([...pending].map((undo) => undo())).then(() => process.exit(130));
  });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en');

/** Runs one ceiling, timed, as one ScenarioResults. */
async function ceiling(scenario: string, measure: () => Promise<Figure[]>): Promise<ScenarioResults> {
  const started = performance.now();
  say(`ceiling: ${scenario}…`);
  const figures = await measure();
  const seconds = (performance.now() - started) / 1_000;
  for (const f of figures) say(`  ${f.name}: ${f.unit === 'ms' ? f.value.toFixed(1) : fmt(f.value)} ${f.unit}`);
  return { scenario, quick, seconds, figures };
}

async function bareRoute(): Promise<Figure[]> {
  const port = await freePort();
  let server: ChildProcess | undefined;
  try {
    server = await startProcess(process.execPath, ['--import', 'tsx', 'scripts/bench/bare-gif-server.ts', String(port)], process.env, 'ready');
    const r = await load('bare fastify GIF route', { url: `http://127.0.0.1:${port}/t.gif?wk=x&aid=visitor` }, 1, HTTP_S);
    if (r.non2xx + r.errors > 0) throw new Error(`the bare route answered ${r.non2xx} non-2xx and ${r.errors} errors`);
    return [
      { name: `bare fastify GIF route req/s (${CONNECTIONS} connections)`, value: r.requestsPerSec, unit: 'req/s', met: null },
      { name: 'bare fastify GIF route p50 latency', value: r.p50, unit: 'ms', met: null },
      { name: 'bare fastify GIF route p99 latency', value: r.p99, unit: 'ms', met: null },
    ];
  } finally {
    if (server) await stopProcess(server);
  }
}

async function bullmq(): Promise<Figure[]> {
  const r = await measureBullmq(BULLMQ_JOBS, BULLMQ_CONCURRENCY);
  return [
    { name: 'BullMQ jobs/s added (addBulk, 1,000 a call)', value: r.addedPerSec, unit: 'jobs/s', met: null },
    ...r.processedPerSec.map(
      (p): Figure => ({
        name: `BullMQ jobs/s processed (no-op Worker, concurrency ${p.concurrency})`,
        value: p.perSec,
        unit: 'jobs/s',
        met: null,
        note: `${fmt(r.jobs)} jobs, the Worker's start included`,
      }),
    ),
  ];
}

async function postgres(): Promise<Figure[]> {
  const bench = await createBenchDatabase();
  return undoable(() => bench.drop(), async () => {
    const r = await measurePostgres(bench.url, PG_ROWS);
    const note = `${fmt(r.rows)} rows (id, uuid, name, timestamptz, jsonb) into an unindexed table, one connection`;
    return [
      { name: `PostgreSQL rows/s, multi-row insert (${fmt(r.perStatement)} a statement)`, value: r.multiRowPerSec, unit: 'rows/s', met: null, note },
      { name: `PostgreSQL rows/s, insert … select from unnest (${fmt(r.perStatement)} a statement)`, value: r.unnestPerSec, unit: 'rows/s', met: null, note },
      ...(r.copyPerSec === undefined
        ? []
        : [{ name: 'PostgreSQL rows/s, COPY FROM STDIN (psql)', value: r.copyPerSec, unit: 'rows/s', met: null, note: `${note}; psql's start included` } satisfies Figure]),
    ];
  });
}

async function redis(): Promise<Figure[]> {
  const r = await measureRedis(REDIS_REQUESTS);
  return Object.entries(r.perSec).map(
    ([command, perSec]): Figure => ({
      name: `redis-benchmark ${command} req/s`,
      value: perSec,
      unit: 'req/s',
      met: null,
      note: `${fmt(r.requests)} requests, 50 clients, no pipelining${r.p50Ms[command] === undefined ? '' : `; p50 ${r.p50Ms[command]} ms`}`,
    }),
  );
}

/** A stand-in for the rendered digest (its size and headers): the engine's templates need a database. */
function standInMessage(): object {
  const items = Array.from({ length: 12 }, (_, i) => `Article ${i + 1}: what changed this week in the shop, and why it matters to you`);
  return {
    to: 'subscriber-0@example.com',
    subject: 'Your weekly digest',
    text: `Hello Ada,\n\n${items.map((t) => `- ${t}\n  https://shop.example/articles/${t.length}`).join('\n')}\n\nUnsubscribe: https://consentflow.example/u/x\n`,
    html: `<html><body><p>Hello Ada,</p><ul>${items.map((t, i) => `<li><a href="https://shop.example/articles/${i}">${t}</a></li>`).join('')}</ul><p><a href="https://consentflow.example/u/x">Unsubscribe</a></p></body></html>`,
    headers: { 'List-Unsubscribe': '<https://consentflow.example/u/x>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'X-Consentflow-Campaign': 'weekly_digest' },
  };
}

async function smtp(): Promise<Figure[]> {
  const sink = await startSmtpSink();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-bench-ceil-'));
  try {
    // The engine mailer's defaults (pool size, sender), as bench:email's ceiling uses them.
    const config = loadConfig({ SMTP_URL: sink.url }, ROOT);
    const spec: MinimalClientSpec = { url: sink.url, poolSize: config.email.poolSize, seconds: SMTP_S, from: config.email.from, message: standInMessage() };
    const composed = await minimalClientRun(sink, spec, false, process.env, dir);
    const raw = await minimalClientRun(sink, spec, true, process.env, dir);
    const note = `nodemailer's pooled transport, ${spec.poolSize} connections, ${spec.poolSize * 4} messages in flight, ${fmt(composed.bytes)} bytes a message, counted at the sink`;
    return [
      { name: 'SMTP sink msg/s, minimal client composing each message', value: composed.rate, unit: 'msg/s', met: null, note },
      { name: 'SMTP sink msg/s, minimal client sending bytes built once (raw)', value: raw.rate, unit: 'msg/s', met: null, note },
    ];
  } finally {
    await sink.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  say(`ceilings on ${machine()}${quick ? ' (--quick)' : ''}`);
  const results: ScenarioResults[] = [];
  results.push(await ceiling('bare fastify GIF route', bareRoute));
  results.push(await ceiling('raw BullMQ', bullmq));
  results.push(await ceiling('raw PostgreSQL', postgres));
  if (hasRedisBenchmark()) results.push(await ceiling('redis-benchmark', redis));
  else say('ceiling: redis-benchmark is not installed (apt: redis-tools); not measured');
  results.push(await ceiling('SMTP sink', smtp));
  const rows = results.flatMap((r) => r.figures.map((f) => `| ${r.scenario} | ${f.name} | ${f.unit === 'ms' ? f.value.toFixed(1) : fmt(f.value)} ${f.unit} |`));
  say(['', '| ceiling | figure | value |', '| --- | --- | ---: |', ...rows].join('\n'));
  writeResults(results);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:ceilings failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

/**
 * `npm run bench:email`: how fast the email worker delivers a broadcast to a local SMTP sink, beside
 * the sink's raw rate with a minimal client measured in the same run, and how much Redis memory
 * scheduled sends take while they wait. Prints a table and writes docs/benchmarks.md's email section.
 * `--quick`: 2,000 subscribers and 3 s ceiling runs instead of 10,000 and 10 s. `--profile`: the
 * worker runs with `--cpu-prof` and a statement counter (scripts/bench/count-queries.js), the script
 * prints where its time went and writes no figures to the docs (profiling slows the worker).
 * `--no-docs`: prints the figures without writing them to the docs (trial runs). `--perf-map`: the
 * same, the worker started with `--perf-basic-prof`, for `perf record -p PID` (CPU time, not wall time).
 * `--results FILE`: writes the figures for the suite (scripts/bench/results.ts; quick figures are
 * not judged).
 *
 * 1. The ceiling: scripts/bench/smtp-client.ts, its own process, sends the pre-rendered digest over
 *    nodemailer's pooled transport with the engine mailer's options and pool size, as fast as it can;
 *    once composing each message (as the mailer does: the ceiling) and once sending bytes built in
 *    advance (what the sink itself takes); each before and after the engine, the higher rate kept.
 * 2. The engine: N people with an address in the vault (through processEventBatch, as the events
 *    worker stores them), email_marketing consent and newsletter_subscribers membership; a tick of
 *    the weekly_digest broadcast (runBroadcastTick, relayed through the outbox) schedules their sends
 *    as delayed BullMQ jobs due a little later; Redis memory is read before and after. Then the real
 *    email worker (`node bin/consentflow.js worker --queues email`) delivers them to the sink, while
 *    /proc says where the machine's CPU went (scripts/bench/proc-cpu.ts).
 * 3. Redis memory at the target's size: 100,000 delayed `email/send` jobs added by the engine's
 *    producer under a scratch prefix (the event stream is capped, so a linear extrapolation overstates).
 *
 * Rates are taken at the sink, from the first message received to the last, for both. Needs
 * PostgreSQL and Redis (DATABASE_URL / REDIS_URL, or the local defaults); uses its own database and
 * queue prefixes and removes them afterwards.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { Redis } from 'ioredis';
import pg from 'pg';
import { runBroadcastTick } from '../../engine/automation/broadcasts';
import { loadConfig, loadKeys } from '../../engine/config';
import { preferenceLink, unsubscribeLink } from '../../engine/consent/links';
import { createLogger } from '../../engine/log/logger';
import { relayOutbox } from '../../engine/outbox/outbox';
import { relayAfterCommit } from '../../engine/outbox/relay-after-commit';
import { openServices, type Services } from '../../engine/runtime/services';
import { type Concern, formatProfileSummary, summarizeProfile } from './cpu-profile';
import { type CpuWindow, startCpuWindow } from './proc-cpu';
import { delayedSendJobs } from './delayed-jobs';
import { deleteKeys, deltaOf, type MemoryDelta, redisMemory } from './redis-memory';
import { seedSubscribers } from './seed-subscribers';
import { createBenchDatabase, machine, REDIS_URL, ROOT, startProcess, stopProcess, writeDocsSection } from './harness';
import { type ScenarioResults, writeResults } from './results';
import { type CeilingRun, type MinimalClientSpec, minimalClientRun, rateOf } from './smtp-ceiling';
import { type SmtpSink, startSmtpSink } from './smtp-sink';

const quick = process.argv.includes('--quick');
const scriptStarted = performance.now();
const profiling = process.argv.includes('--profile');
/** `--perf-map`: the worker writes /tmp/perf-PID.map (node --perf-basic-prof), so `perf record -p PID` names its JavaScript. */
const perfMap = process.argv.includes('--perf-map');
/** `--no-docs` (and `--perf-map`): print the figures only (trial runs leave docs/benchmarks.md alone). */
const writeDocs = !process.argv.includes('--no-docs') && !perfMap;
const SUBSCRIBERS = quick ? 2_000 : 10_000;
const CEILING_S = quick ? 3 : 10;
/** Time between the tick and its sends being due: enough to enrol everyone and read Redis first. */
const LEAD_MS = quick ? 10_000 : 60_000;
const SEND_BUDGET_MS = quick ? 120_000 : 300_000;
const TARGET_RATE = 500;
const TARGET_RATIO = 0.5;
const TARGET_MB_PER_100K = 100;
const CAMPAIGN = 'weekly_digest';
/** How the worker's profile is split: the first of these found from the top of each sample's stack. */
const CONCERNS: readonly Concern[] = [
  ['logging (pino)', /node_modules\/(pino|sonic-boom|thread-stream)|\/dist\/engine\/log\//],
  ['PostgreSQL client (kysely, pg)', /node_modules\/(kysely|pg|pg-protocol|pg-pool|pg-types)\//],
  ['SMTP client (nodemailer)', /node_modules\/nodemailer\//],
  ['templates (liquidjs, htmlToText)', /node_modules\/liquidjs\/|\/dist\/engine\/email\/(templates|html-to-text)\.js/],
  ['queue (bullmq, ioredis)', /node_modules\/(bullmq|ioredis|@ioredis|msgpackr)\//],
  ['payload checks (zod)', /node_modules\/zod\//],
  ['vault crypto', /\/dist\/engine\/vault\//],
  ['rest of the engine', /\/dist\/(engine|workers)\//],
  ['diagnostics (statement counter)', /scripts\/bench\/count-queries\.js/],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ── measuring ───────────────────────────────────────────────────────────────────────────────────

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** Transactions committed in a database so far (pg_stat_database). */
async function commitsIn(admin: pg.Client, database: string): Promise<number> {
  const { rows } = await admin.query<{ commits: string }>('select xact_commit::text as commits from pg_stat_database where datname = $1', [database]);
  return Number(rows[0]?.commits ?? 0);
}

// ── the engine's side ───────────────────────────────────────────────────────────────────────────

/** The digest as the worker renders it for one subscriber, as nodemailer options: the ceiling's message. */
async function digestMessage(services: Services): Promise<object> {
  const base = services.config.http.publicUrl;
  const sendId = randomUUID();
  const unsubscribe = unsubscribeLink(base, services.keys.linkSigning, sendId);
  const rendered = await services.rules.templates.render(CAMPAIGN, {
    first_name: 'Ada',
    traits: {},
    unsubscribe_url: unsubscribe,
    preferences_url: preferenceLink(base, services.keys.linkSigning, randomUUID()),
    campaign: { id: CAMPAIGN, name: services.rules.compiled.campaigns.get(CAMPAIGN)?.file.name ?? CAMPAIGN },
    send_id: sendId,
  });
  return {
    to: 'subscriber-0@example.com',
    subject: rendered.subject,
    text: rendered.text,
    html: rendered.html,
    headers: { 'List-Unsubscribe': `<${unsubscribe}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'X-Consentflow-Campaign': CAMPAIGN },
  };
}

interface EngineRun {
  readonly setupSeconds: number;
  readonly tickSeconds: number;
  readonly scheduled: number;
  readonly delayed: number;
  readonly memory: MemoryDelta;
  /** CPU while the sends went out: the machine, and the worker, PostgreSQL's backends, Redis and the sink. */
  readonly cpu?: CpuWindow;
  readonly received: number;
  readonly distinct: number;
  readonly rate: number;
  readonly seconds: number;
  /** From the sends' due time to the sink, ms. */
  readonly firstMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly bytes: number;
  readonly states: string;
  readonly commitsPerSend: number;
  readonly profile?: string;
  readonly queries?: string;
}

async function engineRun(
  services: Services,
  sink: SmtpSink,
  env: NodeJS.ProcessEnv,
  ctx: { redis: Redis; admin: pg.Client; database: string; prefix: string; dir: string },
): Promise<EngineRun> {
  const db = services.databases.db;
  const setupSeconds = await seedSubscribers(services, SUBSCRIBERS);
  process.stdout.write(`${SUBSCRIBERS.toLocaleString('en')} subscribers stored in ${setupSeconds.toFixed(1)} s\n`);

  // The sends are scheduled as delayed jobs due LEAD_MS from now, so Redis holds them while it is read.
  const before = await redisMemory(ctx.redis, ctx.prefix);
  const due = new Date(Date.now() + LEAD_MS);
  const tickStarted = performance.now();
  const automation = { compiled: services.rules.compiled, catalog: services.rules.purposes };
  const tick = await runBroadcastTick(db, automation, CAMPAIGN, due, { afterPage: (sends) => relayAfterCommit(services, sends) });
  while ((await relayOutbox(db, services.queues)) > 0);
  const tickSeconds = (performance.now() - tickStarted) / 1_000;
  const counts = await services.queues.queue('email').getJobCounts('delayed', 'wait');
  const after = await redisMemory(ctx.redis, ctx.prefix);
  const scheduled = (counts.delayed ?? 0) + (counts.wait ?? 0);
  process.stdout.write(
    `tick: ${tick.members} members, ${tick.sends} sends in ${tickSeconds.toFixed(1)} s; email queue: ${counts.delayed} delayed, ${counts.wait} waiting; ` +
      `Redis used_memory +${((after.used - before.used) / 2 ** 20).toFixed(1)} MiB, keys under the prefix +${((after.keyBytes - before.keyBytes) / 2 ** 20).toFixed(1)} MiB (${after.keys} keys, ${after.eventEntries} stream entries)\n`,
  );
  if (tick.sends !== SUBSCRIBERS || scheduled !== SUBSCRIBERS) throw new Error(`expected ${SUBSCRIBERS} scheduled sends, got ${tick.sends} from the tick and ${scheduled} jobs`);

  sink.reset();
  const commitsBefore = await commitsIn(ctx.admin, ctx.database);
  const profileDir = path.join(ctx.dir, 'profile');
  const queryFile = path.join(ctx.dir, 'queries.json');
  const args = profiling
    ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--require', './scripts/bench/count-queries.js', 'bin/consentflow.js', 'worker', '--queues', 'email']
    : [...(perfMap ? ['--perf-basic-prof'] : []), 'bin/consentflow.js', 'worker', '--queues', 'email'];
  const worker = await startProcess(process.execPath, args, { ...env, BENCH_QUERY_COUNT_FILE: queryFile }, 'workers started');
  if (perfMap) process.stdout.write(`email worker pid ${worker.pid} (perf map /tmp/perf-${worker.pid}.map)\n`);
  const readyIn = due.getTime() - Date.now();
  process.stdout.write(`email worker started ${(readyIn / 1_000).toFixed(1)} s before the sends are due\n`);
  let cpu: EngineRun['cpu'];
  try {
    // The worker idles until the sends are due; CPU is counted from then to the last message.
    await sleep(Math.max(0, due.getTime() - Date.now()));
    const backends = async () =>
      (await ctx.admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [ctx.database])).rows.map((r) => r.pid);
    const redisPid = Number(/process_id:(\d+)/.exec(await ctx.redis.info('server'))?.[1] ?? NaN);
    const endCpu = await startCpuWindow({
      worker: () => (worker.pid ? [worker.pid] : []),
      postgres: backends,
      redis: () => (Number.isFinite(redisPid) ? [redisPid] : []),
      sink: () => [process.pid],
    });
    const deadline = due.getTime() + SEND_BUDGET_MS;
    let shown = 0;
    while (sink.receipts.length < SUBSCRIBERS && Date.now() < deadline) {
      await sleep(100);
      if (sink.receipts.length - shown >= SUBSCRIBERS / 4) {
        shown = sink.receipts.length;
        process.stdout.write(`  ${shown.toLocaleString('en')} received\n`);
      }
    }
    cpu = await endCpu();
  } finally {
    await stopProcess(worker);
  }
  const receipts = sink.receipts;
  const distinct = new Set(receipts.map((r) => r.messageId)).size;
  const latencies = receipts.map((r) => r.at - due.getTime()).sort((a, b) => a - b);
  const states = await sql<{ state: string; n: string }>`select state, count(*)::text as n from app.scheduled_sends group by state order by state`.execute(db);
  // pg_stat_database is flushed by each backend at its exit at the latest; the worker's have exited.
  await sleep(1_500);
  const commitsAfter = await commitsIn(ctx.admin, ctx.database);
  const first = receipts[0]?.at ?? 0;
  const last = receipts[receipts.length - 1]?.at ?? 0;
  let profile: string | undefined;
  let queries: string | undefined;
  if (profiling) {
    const file = fs.readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
    if (file) {
      const kept = path.join(os.tmpdir(), `cf-bench-email-worker-${Date.now()}.cpuprofile`);
      fs.copyFileSync(path.join(profileDir, file), kept);
      profile = `${formatProfileSummary(summarizeProfile(kept, CONCERNS), receipts.length)}\nprofile kept at ${kept} (open it in Chrome DevTools or speedscope)`;
    }
    if (fs.existsSync(queryFile)) {
      const rows = JSON.parse(fs.readFileSync(queryFile, 'utf8')) as Array<{ sql: string; n: number }>;
      const total = rows.reduce((a, r) => a + r.n, 0);
      queries = [
        `statements sent to PostgreSQL by the worker: ${total.toLocaleString('en')}, ${(total / Math.max(1, receipts.length)).toFixed(1)} per message; by shape:`,
        ...rows.slice(0, 25).map((r) => `  ${(r.n / Math.max(1, receipts.length)).toFixed(2).padStart(6)}/msg  ${r.sql}`),
      ].join('\n');
    }
  }
  return {
    setupSeconds,
    tickSeconds,
    scheduled,
    delayed: counts.delayed ?? 0,
    memory: deltaOf(before, after),
    ...(cpu ? { cpu } : {}),
    received: receipts.length,
    distinct,
    rate: rateOf(receipts),
    seconds: (last - first) / 1_000,
    firstMs: latencies[0] ?? 0,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: latencies[latencies.length - 1] ?? 0,
    bytes: receipts.length > 0 ? Math.round(receipts.reduce((a, r) => a + r.bytes, 0) / receipts.length) : 0,
    states: states.rows.map((r) => `${r.n} ${r.state}`).join(', '),
    commitsPerSend: (commitsAfter - commitsBefore) / Math.max(1, receipts.length),
    ...(profile ? { profile } : {}),
    ...(queries ? { queries } : {}),
  };
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const bench = await createBenchDatabase();
  const { name: database, admin, prefix, dataDir } = bench;
  const sink = await startSmtpSink();
  // production's log level: the readiness line the script waits for is at info
  const env = bench.env({ SMTP_URL: sink.url });
  const config = loadConfig(env, ROOT);
  const log = createLogger({ level: 'warn', fd: 2 });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  let services: Services | undefined;
  try {
    services = await openServices({ config, keys: loadKeys(config, log), log, searchPath: process.env.PATH ?? '' });
    const spec: MinimalClientSpec = { url: sink.url, poolSize: config.email.poolSize, seconds: CEILING_S, from: config.email.from, message: await digestMessage(services) };
    const ceilings = async (when: string) => {
      const composed = await minimalClientRun(sink, spec, false, env, dataDir);
      const raw = await minimalClientRun(sink, spec, true, env, dataDir);
      process.stdout.write(`ceiling (${when}): ${Math.round(composed.rate)} msg/s composing each message, ${Math.round(raw.rate)} msg/s sending pre-built bytes\n`);
      return { composed, raw };
    };
    const before = await ceilings('before');
    const engine = await engineRun(services, sink, env, { redis, admin, database, prefix, dir: dataDir });
    const after = await ceilings('after');
    const { memory } = await delayedSendJobs(services, redis, 100_000);
    process.stdout.write(`100,000 delayed email/send jobs: used_memory +${(memory.used / 2 ** 20).toFixed(1)} MiB, keys +${(memory.keyBytes / 2 ** 20).toFixed(1)} MiB\n`);
    const better = (a: CeilingRun, b: CeilingRun) => (a.rate >= b.rate ? a : b);
    report({
      ceilings: { before, after },
      best: better(before.composed, after.composed),
      bestRaw: better(before.raw, after.raw),
      engine,
      memory,
      poolSize: config.email.poolSize,
    });
  } finally {
    await services?.releasers.releaseAll(log, 10_000);
    await deleteKeys(redis, prefix).catch(() => undefined);
    redis.disconnect();
    await sink.close();
    await bench.drop();
  }
}

/** Where the machine's CPU went while the worker sent, in ms a message. */
function cpuLine(cpu: CpuWindow, messages: number): string {
  const per = (ms: number) => (ms / Math.max(1, messages)).toFixed(1);
  const { worker = 0, postgres = 0, redis = 0, sink = 0 } = cpu.groups;
  const others = cpu.machineMs - worker - postgres - redis - sink;
  return (
    `- CPU while the sends went out: the machine ${(100 * cpu.machineBusy).toFixed(0)} % busy over all ${os.cpus().length} cores; CPU ms a message: ` +
    `worker ${per(worker)}, PostgreSQL backends ${per(postgres)}, Redis ${per(redis)}, the sink ${per(sink)}, everything else on the machine ${per(Math.max(0, others))}`
  );
}

interface Report {
  readonly ceilings: Record<'before' | 'after', { composed: CeilingRun; raw: CeilingRun }>;
  readonly best: CeilingRun;
  readonly bestRaw: CeilingRun;
  readonly engine: EngineRun;
  readonly memory: MemoryDelta;
  readonly poolSize: number;
}

function report(r: Report): void {
  const { engine, best, bestRaw, memory } = r;
  const ratio = engine.rate / best.rate;
  const fmt = (n: number) => Math.round(n).toLocaleString('en');
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  const perSend = (bytes: number) => fmt(bytes / engine.scheduled);
  const rateMet = engine.rate >= TARGET_RATE;
  const ratioMet = ratio >= TARGET_RATIO;
  const complete = engine.received === SUBSCRIBERS && engine.distinct === SUBSCRIBERS;
  // Both readings of the 100,000 jobs must be within the target: used_memory has the allocator's overhead.
  const memWorst = Math.max(memory.used, memory.keyBytes);
  const memMet = memWorst <= TARGET_MB_PER_100K * 1e6;
  const linear = (bytes: number) => (bytes / engine.scheduled) * 100_000;
  const rows = [
    `| minimal client: nodemailer pool of ${r.poolSize}, the pre-rendered digest composed per message (ceiling) | ${fmt(best.rate)} | 1.00× | — | — |`,
    `| minimal client: the same pool, the digest's bytes built once (the sink's capacity, for reference) | ${fmt(bestRaw.rate)} | ${(bestRaw.rate / best.rate).toFixed(2)}× | — | — |`,
    `| consentflow email worker, ${SUBSCRIBERS.toLocaleString('en')} broadcast sends | ${fmt(engine.rate)} | ${ratio.toFixed(2)}× | ≥ ${TARGET_RATE} msg/s and ≥ ${TARGET_RATIO}× | ${rateMet && ratioMet && complete ? 'met' : `missed (${[rateMet ? '' : 'rate', ratioMet ? '' : 'ratio', complete ? '' : 'delivery'].filter(Boolean).join(', ')})`} |`,
  ];
  const table = ['| scenario | msg/s | vs ceiling | target | verdict |', '| --- | ---: | ---: | --- | --- |', ...rows].join('\n');
  const lines = [
    `- Redis memory per 100,000 scheduled sends: ${mb(memory.used)} MB by INFO used_memory, ${mb(memory.keyBytes)} MB by MEMORY USAGE of the queue's keys ` +
      `(100,000 delayed \`email/send\` jobs added by the engine's producer with the catalog's options; each job's hash ${fmt(memory.jobHashes / 100_000)} bytes, ` +
      `the event stream ${mb(memory.events)} MB at ${fmt(memory.eventEntries)} entries, its cap; target ≤ ${TARGET_MB_PER_100K} MB, 1 MB = 10^6 bytes): ${memMet ? 'met' : 'missed'}`,
    `- Redis memory of this run's ${engine.scheduled.toLocaleString('en')} sends scheduled by the tick (${engine.delayed.toLocaleString('en')} delayed): ` +
      `${perSend(engine.memory.used)} bytes a send by used_memory, ${perSend(engine.memory.keyBytes)} by the keys (job hash ${perSend(engine.memory.jobHashes)}, event stream ${perSend(engine.memory.events)} at ${fmt(engine.memory.eventEntries)} entries); ` +
      `extrapolated linearly ${mb(linear(engine.memory.used))} MB per 100,000, which overstates: the stream stops growing at its cap`,
    `- delivery: ${engine.received.toLocaleString('en')} messages received (${engine.distinct.toLocaleString('en')} distinct Message-IDs; rows: ${engine.states}) in ${engine.seconds.toFixed(1)} s from first to last, ${fmt(engine.bytes)} bytes each on average`,
    `- from due to received (all ${SUBSCRIBERS.toLocaleString('en')} due at the same instant, so this is the backlog draining): first ${fmt(engine.firstMs)} ms, p50 ${fmt(engine.p50Ms)} ms, p99 ${fmt(engine.p99Ms)} ms, last ${fmt(engine.maxMs)} ms`,
    ...(engine.cpu ? [cpuLine(engine.cpu, engine.received)] : []),
    `- PostgreSQL transactions committed in the bench database while the worker ran: ${engine.commitsPerSend.toFixed(1)} a message`,
    `- ceiling runs (composed / pre-built): ${fmt(r.ceilings.before.composed.rate)} / ${fmt(r.ceilings.before.raw.rate)} msg/s before the engine, ${fmt(r.ceilings.after.composed.rate)} / ${fmt(r.ceilings.after.raw.rate)} after; the higher of each is used; ${fmt(best.bytes)} bytes a message`,
    `- setup (no target): ${SUBSCRIBERS.toLocaleString('en')} subscribers stored in ${engine.setupSeconds.toFixed(1)} s; the tick enrolled them and scheduled their sends in ${engine.tickSeconds.toFixed(1)} s`,
  ].join('\n');
  process.stdout.write(`\n${table}\n\n${lines}\n`);
  writeResults(suiteResults(r, { rateMet: rateMet && complete, ratioMet, memMet, memWorst }));
  if (engine.queries) process.stdout.write(`\n${engine.queries}\n`);
  if (engine.profile) process.stdout.write(`\n${engine.profile}\n`);
  if (!complete) process.stdout.write(`\nWARNING: ${engine.received} messages received, ${engine.distinct} distinct, ${SUBSCRIBERS} expected\n`);
  if (profiling) {
    process.stdout.write('\n--profile: the worker ran under the profiler and the statement counter; docs/benchmarks.md left unchanged\n');
    return;
  }
  if (!writeDocs) {
    process.stdout.write('\n--no-docs or --perf-map: docs/benchmarks.md left unchanged\n');
    return;
  }
  const section = [
    '<!-- bench:email:start -->',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, ` +
      `\`npm run bench:email${quick ? ' -- --quick' : ''}\`. PostgreSQL, Redis, the SMTP sink (smtp-server, accepting everything, parsing nothing), the client and the worker share the machine. ` +
      `The ceiling is a minimal client in its own process: nodemailer's pooled transport with the engine mailer's options and pool size (${r.poolSize} connections, ${r.poolSize * 4} messages in flight) ` +
      `sending the pre-rendered digest for ${CEILING_S} s, the better of a run before and one after the engine. ` +
      `The engine: a \`${CAMPAIGN}\` broadcast tick to ${SUBSCRIBERS.toLocaleString('en')} subscribers (addresses in the vault, consent, segment membership) scheduled their sends as delayed jobs; ` +
      'then one email worker process (`consentflow worker --queues email`, LOG_LEVEL=info) delivered them. Rates are counted at the sink from the first message to the last.',
    '',
    table,
    '',
    lines,
    '<!-- bench:email:end -->',
  ].join('\n');
  writeDocsSection('bench:email', section, '## Email');
}

/** The figures the suite gathers (scripts/bench/results.ts); a quick run's are not judged. */
function suiteResults(r: Report, verdicts: { rateMet: boolean; ratioMet: boolean; memMet: boolean; memWorst: number }): ScenarioResults {
  const { engine, best, bestRaw } = r;
  const judge = (met: boolean) => (quick || profiling ? null : met);
  const ceiling = { name: `minimal client, pool of ${r.poolSize}, composing each message`, value: best.rate, unit: 'msg/s' };
  const limits = 'the worker\'s event loop and the SMTP pool (docs/benchmarks.md, "Email")';
  return {
    scenario: 'email to local SMTP sink',
    quick,
    seconds: (performance.now() - scriptStarted) / 1_000,
    figures: [
      {
        name: `email worker msg/s (${SUBSCRIBERS.toLocaleString('en')} broadcast sends)`,
        value: engine.rate,
        unit: 'msg/s',
        target: `≥ ${TARGET_RATE} msg/s`,
        ceiling,
        met: judge(verdicts.rateMet),
        ...(verdicts.rateMet ? {} : { note: engine.received === engine.distinct && engine.received === SUBSCRIBERS ? limits : `${engine.received} received, ${engine.distinct} distinct, ${SUBSCRIBERS} expected` }),
      },
      {
        name: 'email worker ÷ minimal client',
        value: engine.rate / best.rate,
        unit: 'x',
        target: `≥ ${TARGET_RATIO}× minimal client`,
        ceiling,
        met: judge(verdicts.ratioMet),
        ...(verdicts.ratioMet ? {} : { note: limits }),
      },
      {
        name: 'email worker ÷ the sink\'s raw rate (bytes built once)',
        value: engine.rate / bestRaw.rate,
        unit: 'x',
        ceiling: { name: 'minimal client sending pre-built bytes', value: bestRaw.rate, unit: 'msg/s' },
        met: null,
        note: 'for reference: the judged ceiling composes each message, as the mailer does',
      },
      {
        name: 'Redis memory per 100,000 scheduled sends',
        value: verdicts.memWorst / 1e6,
        unit: 'MB',
        target: `≤ ${TARGET_MB_PER_100K} MB`,
        met: judge(verdicts.memMet),
        note: 'the larger of INFO used_memory and MEMORY USAGE of the keys; 1 MB = 10^6 bytes',
      },
    ],
  };
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:email failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

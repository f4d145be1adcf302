/**
 * `npm run bench:delayed-sends`: 100,000 sends scheduled ahead by a real campaign, how long the
 * engine takes to get them into PostgreSQL and Redis, what they cost in Redis while they wait, and
 * how late they fire. Issue 9: "100,000 delayed sends scheduled: ≤ 5 s to schedule; ≤ 100 MB Redis;
 * due sends fire with p99 lateness ≤ 1 s". Prints a table and writes docs/benchmarks.md's section.
 * `--quick`: 5,000 sends, due at least 5 s after they are expected to be scheduled (a smoke run,
 * about 90 s; its verdicts are not judged, and the docs are left alone). `BENCH_DELAYED_SENDS=N`:
 * N sends instead (a reduced run: not judged either, docs left alone). `--results FILE`: the figures for the suite
 * (scripts/bench/results.ts). `--no-docs`: the docs are left alone. `--ms-per-send=N`: the
 * scheduling estimate the due time is chosen from, instead of the probe's (below). `--help`: this.
 *
 * The path: the campaign shape with which the engine schedules sends ahead in bulk, a broadcast
 * to each person at a wall time in their own zone (`person_timezone: true`, docs/rules.md
 * "Broadcasts"). Its tick enrols the segment's members page by page (runBroadcastTick, called as
 * the broadcasts worker calls it, with the clock's time; a page of 2,000 written with a handful of
 * set-based statements, engine/automation/broadcast-page.ts): each member gets a row in
 * app.scheduled_sends due at that wall time, with an `email/send` outbox row; the journey waits
 * for its send (so an exit meanwhile cancels it) with no job of its own (the rules tick moves it on
 * once the send is due). Each page's outbox rows are relayed to Redis in one pipelined add, while
 * the next page is written, as delayed jobs with deterministic ids (`send-<id>`).
 *
 * 1. N people with an address in the vault, consent to email marketing and newsletter membership
 *    (seed-subscribers.ts, as bench:email). The ceiling: the engine's producer alone adds N delayed
 *    `email/send` jobs (enqueueBulk, pages of 1,000; delayed-jobs.ts), timed, its memory measured.
 * 2. The due time must come after the scheduling ends, and the cron has whole minutes: a probe, the
 *    same broadcast to a manual segment of 2,000 of the people (500 in --quick) due hours later,
 *    is timed first (its jobs stay delayed and are left out of every figure), and its rate, times
 *    1.15, is the estimate. A campaign file is written to a copy of rules/: daily at the UTC wall
 *    time of the first whole minute at least (the estimate + a lead) ahead, `person_timezone: true`, zone UTC
 *    (the seeded people have no timezone trait, so all sends are due at that one instant), one send
 *    step with the digest template. The bench's engine reloads its rules; one email worker process
 *    (`consentflow worker --queues email`) starts with them, sending to the local SMTP sink.
 * 3. The trigger: the tick, then the outbox drained into Redis (the tick relays after each page as
 *    the broadcasts worker does; what that leaves, relayed here, the events worker's reconciler
 *    would relay). Time to schedule = from the tick's start until every send is a row and a delayed
 *    job. Redis memory: INFO used_memory before and after (the whole server: other work on it
 *    moves it), and MEMORY USAGE of every key under the prefix, by queue.
 * 4. When due: the email queue's delayed set is sampled every few ms (a job leaves it when BullMQ
 *    promotes it to `wait`, ready for any worker: the scheduler firing it), and then every row's
 *    claimed_at and sent_at and every message's arrival at the sink say when each send was claimed
 *    and delivered. All N are due at one instant, so the claim and delivery figures measure the
 *    backlog draining at the worker's send rate; the firing is what the target's precision is about.
 *
 * Needs PostgreSQL and Redis (DATABASE_URL / REDIS_URL, or the local defaults); uses its own
 * database, queue prefix and rules directory and removes them afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import type pg from 'pg';
import { BROADCAST_PAGE_SIZE, runBroadcastTick } from '../../engine/automation/broadcasts';
import { loadConfig, loadKeys } from '../../engine/config';
import { createLogger } from '../../engine/log/logger';
import { relayOutbox } from '../../engine/outbox/outbox';
import { relayAfterCommit } from '../../engine/outbox/relay-after-commit';
import { reloadRules } from '../../engine/runtime/reload-rules';
import { openServices, type Services } from '../../engine/runtime/services';
import { type DelayedJobs, delayedSendJobs } from './delayed-jobs';
import { type Figure, writeResults } from './results';
import { type CpuWindow, startCpuWindow } from './proc-cpu';
import { deleteKeys, forEachKeySize, usedMemory } from './redis-memory';
import { createBenchDatabase, machine, REDIS_URL, ROOT, startProcess, stopProcess, writeDocsSection } from './harness';
import { seedSubscribers } from './seed-subscribers';
import { type SmtpSink, startSmtpSink } from './smtp-sink';

if (process.argv.includes('--help')) {
  process.stdout.write(`${fs.readFileSync(__filename, 'utf8').split('*/')[0]?.replace(/^\/\*\*\n| \* ?/gm, '')}\n`);
  process.exit(0);
}
const sizeSet = process.env.BENCH_DELAYED_SENDS;
/** A reduced run (--quick, or BENCH_DELAYED_SENDS): figures not judged, the docs left alone. */
const quick = process.argv.includes('--quick') || (sizeSet !== undefined && Number(sizeSet) !== 100_000);
const writeDocs = !process.argv.includes('--no-docs');
const SENDS = sizeSet !== undefined ? Math.max(1, Math.floor(Number(sizeSet))) : quick ? 5_000 : 100_000;
const CAMPAIGN = 'bench_delayed_sends';
const TEMPLATE = 'weekly_digest';
/** `--ms-per-send=N`: the scheduling estimate, instead of the probe's measure (ms a send, tick and relay). */
const MS_PER_SEND = process.argv.find((a) => a.startsWith('--ms-per-send='))?.split('=')[1];
const PROBE_CAMPAIGN = 'bench_delayed_probe';
const PROBE_SEGMENT = 'bench_probe';
/** Members of the probe broadcast, which measures what a member costs to schedule on the machine as it is now. */
const PROBE = quick ? 500 : 2_000;
/** The probe's rate is stretched by this much for the estimate (the tables grow, the machine is shared). */
const ESTIMATE_SAFETY = 1.15;
/** Seconds between the expected end of the scheduling and the due time, at least (the cron's whole minute adds up to 60). */
const LEAD_S = quick ? 5 : 15;
/** How long after the due time the sends may take to arrive before the run gives up on the rest. */
const SEND_BUDGET_MS = quick ? 120_000 : 600_000;
/** How often the delayed set is sampled around the due time. */
const SAMPLE_MS = 2;
const TARGET_SCHEDULE_S = 5;
const TARGET_REDIS_MB = 100;
const TARGET_LATENESS_MS = 1_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const mb = (bytes: number) => bytes / 1e6;
/** Nearest rank. */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}
interface Spread {
  readonly first: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly n: number;
}
function spreadOf(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { first: sorted[0] ?? NaN, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] ?? NaN, n: sorted.length };
}
const msOf = (n: number) => (Number.isNaN(n) ? '—' : Math.abs(n) >= 100 ? fmt(n) : n.toFixed(1));

// ── the campaign ────────────────────────────────────────────────────────────────────────────────

/** The first whole UTC minute at least `aheadMs` from now. */
function dueMinute(aheadMs: number): Date {
  const at = Date.now() + aheadMs;
  return new Date(Math.ceil(at / 60_000) * 60_000);
}

/** A broadcast at `due`'s UTC wall time, every day, in each member's zone (UTC for members without one). */
function campaignFile(due: Date, id = CAMPAIGN, segment = 'newsletter_subscribers'): string {
  return [
    '# Written by scripts/bench/delayed-sends.ts: every member gets the digest at this wall time in their own zone.',
    `id: ${id}`,
    `name: Bench delayed sends (${id})`,
    'purposes: [email_marketing]',
    'trigger:',
    '  schedule:',
    `    cron: "${due.getUTCMinutes()} ${due.getUTCHours()} * * *"`,
    '    timezone: UTC',
    '    person_timezone: true',
    `  segment: ${segment}`,
    'steps:',
    '  - send:',
    `      template: ${TEMPLATE}`,
    '',
  ].join('\n');
}

// ── Redis ───────────────────────────────────────────────────────────────────────────────────────

interface KeyMemory {
  /** INFO used_memory: the whole server. */
  readonly used: number;
  /** MEMORY USAGE of the keys under the prefix, by queue (`email`, `journeys`, …). */
  readonly byQueue: Record<string, number>;
  /** Of those, the job hashes alone, by queue. */
  readonly jobsByQueue: Record<string, number>;
  readonly keys: number;
}

async function keyMemory(redis: Redis, prefix: string): Promise<KeyMemory> {
  const used = await usedMemory(redis);
  const byQueue: Record<string, number> = {};
  const jobsByQueue: Record<string, number> = {};
  let keys = 0;
  await forEachKeySize(redis, prefix, (key, bytes) => {
    const [queue = '?', rest = ''] = key.slice(prefix.length + 1).split(':', 2);
    byQueue[queue] = (byQueue[queue] ?? 0) + bytes;
    if (/^(send|wake)-/.test(rest)) jobsByQueue[queue] = (jobsByQueue[queue] ?? 0) + bytes;
    keys++;
  });
  return { used, byQueue, jobsByQueue, keys };
}

/**
 * The sampler, in a thread of its own so that the sink's work on this process's event loop does not
 * space the samples out: the size of the delayed set, every few ms from `startAt`, until only
 * `others` are left (or the deadline); each change is posted back with its time (ms since the epoch).
 */
const SAMPLER = `
const { parentPort, workerData } = require('node:worker_threads');
const { Redis } = require(workerData.ioredis);
(async () => {
  const { url, key, others, startAt, deadline, intervalMs } = workerData;
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  await redis.ping();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
  const steps = [];
  let samples = 0;
  for (;;) {
    const left = (await redis.zcard(key)) - others;
    const at = performance.timeOrigin + performance.now();
    samples++;
    if (left !== steps[steps.length - 1]?.[1]) steps.push([at, left]);
    if (left <= 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  redis.disconnect();
  parentPort.postMessage({ steps, samples });
})();
`;

/**
 * Watches a delayed set from 300 ms before `due` until it holds only `others` (the jobs not due in
 * this run), or the deadline: the k-th job promoted left it by the first sample at which at least k
 * had gone. Each job's lateness is that sample's time minus `due`, ms (resolution: the sampling
 * interval and a round trip, which Redis delays while it runs a promotion).
 */
function watchPromotion(key: string, total: number, others: number, due: number, deadline: number): Promise<Promotion> {
  return new Promise((resolve, reject) => {
    const thread = new Worker(SAMPLER, {
      eval: true,
      workerData: { ioredis: require.resolve('ioredis'), url: REDIS_URL, key, others, startAt: due - 300, deadline, intervalMs: SAMPLE_MS },
    });
    thread.once('error', reject);
    thread.once('message', (m: { steps: Array<[number, number]>; samples: number }) => {
      const lateness: number[] = [];
      for (const [at, left] of m.steps) while (lateness.length < total - left) lateness.push(at - due);
      resolve({ lateness, samples: m.samples, steps: m.steps.map(([at, left]) => [at - due, left]) });
      void thread.terminate();
    });
  });
}

interface Promotion {
  /** Per job, ms after the due time it left the delayed set. */
  readonly lateness: number[];
  readonly samples: number;
  /** [ms after the due time, jobs still delayed] at each sample that saw a change. */
  readonly steps: Array<[number, number]>;
}

// ── the run ─────────────────────────────────────────────────────────────────────────────────────

interface Run {
  readonly seedSeconds: number;
  readonly ceiling: DelayedJobs;
  readonly due: Date;
  /** ms from the tick's start to the due time, as chosen. */
  readonly leadMs: number;
  readonly tickSeconds: number;
  readonly relaySeconds: number;
  /** Seconds the relays after each page ran (beside the next page's writes). */
  readonly relayBusySeconds: number;
  readonly scheduleSeconds: number;
  readonly pages: number;
  readonly tick: { members: number; sends: number };
  readonly rows: number;
  readonly outboxRows: number;
  /** Outbox rows not yet relayed when the tick returned. */
  readonly leftAfterTick: number;
  /** The time each delayed send job will fire at, as BullMQ stored it, minus the row's due time, ms. */
  readonly fireSkew: Spread;
  readonly jobs: { email: number; journeys: number };
  readonly memoryBefore: KeyMemory;
  readonly memoryAfter: KeyMemory;
  readonly promotion: Promotion;
  readonly claimed: Spread;
  readonly sent: Spread;
  readonly received: Spread;
  readonly receivedCount: number;
  readonly distinct: number;
  readonly rate: number;
  readonly states: string;
  readonly cpu: CpuWindow | undefined;
  readonly scheduleCpu: CpuWindow | undefined;
  readonly workerReadyMs: number;
  readonly probeMsPerSend: number;
  readonly estimateMs: number;
}

async function run(services: Services, sink: SmtpSink, env: NodeJS.ProcessEnv, ctx: { redis: Redis; rulesDir: string; prefix: string; database: string; admin: pg.Client }): Promise<Run> {
  const db = services.databases.db;
  const seedSeconds = await seedSubscribers(services, SENDS, 'bench delayed sends');
  say(`${fmt(SENDS)} subscribers stored in ${seedSeconds.toFixed(1)} s`);

  const ceiling = await delayedSendJobs(services, ctx.redis, SENDS);
  say(`ceiling: the producer alone added ${fmt(SENDS)} delayed email/send jobs in ${ceiling.seconds.toFixed(2)} s (used_memory +${mb(ceiling.memory.used).toFixed(1)} MB, keys +${mb(ceiling.memory.keyBytes).toFixed(1)} MB)`);

  // The probe: the same broadcast to a manual segment of PROBE of the people, due in 6 hours (its
  // jobs stay delayed, apart from the run's), timed: what a member costs on the machine as it is now.
  fs.writeFileSync(path.join(ctx.rulesDir, 'segments', `${PROBE_SEGMENT}.yaml`), `id: ${PROBE_SEGMENT}\nname: Bench probe\nmanual: true\n`);
  fs.writeFileSync(path.join(ctx.rulesDir, 'campaigns', `${PROBE_CAMPAIGN}.yaml`), campaignFile(dueMinute(6 * 3_600_000), PROBE_CAMPAIGN, PROBE_SEGMENT));
  const reload = async () => {
    const reloaded = await reloadRules({ rules: services.rules, databases: services.databases, log: services.log });
    if (!reloaded.ok) throw new Error(`the bench campaigns were refused: ${reloaded.problems.join('; ')}`);
  };
  await reload();
  await sql`insert into app.segment_state (profile_id, segment_id, member, changed_at)
    select id, ${PROBE_SEGMENT}, true, now() from app.profiles order by id limit ${PROBE}`.execute(db);
  const probeStarted = performance.now();
  const probeTick = await runBroadcastTick(db, { compiled: services.rules.compiled, catalog: services.rules.purposes }, PROBE_CAMPAIGN, new Date(), {
    afterPage: (sends) => relayAfterCommit(services, sends),
  });
  while ((await relayOutbox(db, services.queues)) > 0);
  const probeMsPerSend = (performance.now() - probeStarted) / Math.max(1, probeTick.sends);
  if (probeTick.sends !== PROBE) throw new Error(`the probe scheduled ${probeTick.sends} sends, ${PROBE} expected`);
  // The probe's delayed jobs, per queue (its sends; wake-ups only if the engine kept any), are not this run's.
  const probeJobs = (await services.queues.queue('email').getJobCounts('delayed')).delayed ?? 0;
  const probeWakes = (await services.queues.queue('journeys').getJobCounts('delayed')).delayed ?? 0;
  say(`probe: ${fmt(probeTick.sends)} sends scheduled at ${probeMsPerSend.toFixed(2)} ms a send`);

  // The campaign's due time from that estimate; the email worker starts (about a second) with it in its rules.
  const estimateMs = SENDS * (MS_PER_SEND !== undefined ? Number(MS_PER_SEND) : probeMsPerSend * ESTIMATE_SAFETY);
  const due = dueMinute(estimateMs + LEAD_S * 1_000 + 3_000);
  fs.writeFileSync(path.join(ctx.rulesDir, 'campaigns', `${CAMPAIGN}.yaml`), campaignFile(due));
  await reload();
  const workerStarted = performance.now();
  const worker = await startProcess(process.execPath, ['bin/consentflow.js', 'worker', '--queues', 'email'], env, 'workers started');
  const workerReadyMs = performance.now() - workerStarted;
  try {
    const redisPid = Number(/process_id:(\d+)/.exec(await ctx.redis.info('server'))?.[1] ?? NaN);
    const backends = async () => (await ctx.admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [ctx.database])).rows.map((r) => r.pid);
    const groups = {
      bench: () => [process.pid],
      worker: () => (worker.pid ? [worker.pid] : []),
      postgres: backends,
      redis: () => (Number.isFinite(redisPid) ? [redisPid] : []),
    };
    const memoryBefore = await keyMemory(ctx.redis, ctx.prefix);
    say(`the sends are due at ${due.toISOString()}, ${((due.getTime() - Date.now()) / 1_000).toFixed(0)} s from now (estimate ${(estimateMs / 1_000).toFixed(0)} s to schedule); the email worker is ready`);
    if (estimateMs > 20 * 60_000) throw new Error(`scheduling is estimated at ${(estimateMs / 60_000).toFixed(0)} minutes: the machine is too busy for this run`);

    // The trigger: the tick, as the broadcasts worker runs it, then the outbox drained.
    const endScheduleCpu = await startCpuWindow(groups);
    const automation = { compiled: services.rules.compiled, catalog: services.rules.purposes };
    const started = performance.now();
    const tickStartedAt = Date.now();
    let pages = 0;
    let relayBusyMs = 0;
    const tick = await runBroadcastTick(db, automation, CAMPAIGN, new Date(), {
      afterPage: async (sends) => {
        pages++;
        const relayStart = performance.now();
        await relayAfterCommit(services, sends);
        relayBusyMs += performance.now() - relayStart;
      },
    });
    const tickSeconds = (performance.now() - started) / 1_000;
    const relayStarted = performance.now();
    const leftAfterTick = Number((await sql<{ n: string }>`select count(*)::text as n from app.outbox where relayed_at is null`.execute(db)).rows[0]?.n ?? 0);
    while ((await relayOutbox(db, services.queues)) > 0);
    const relaySeconds = (performance.now() - relayStarted) / 1_000;
    const scheduleSeconds = (performance.now() - started) / 1_000;
    const scheduleCpu = await endScheduleCpu();
    say(`tick: ${fmt(tick.members)} members, ${fmt(tick.sends)} sends, ${pages} pages in ${tickSeconds.toFixed(1)} s; the outbox's rest relayed in ${relaySeconds.toFixed(1)} s; scheduled in ${scheduleSeconds.toFixed(1)} s`);

    const rows = Number(
      (await sql<{ n: string }>`select count(*)::text as n from app.scheduled_sends where campaign_id = ${CAMPAIGN} and state = 'scheduled' and due_at = ${due}`.execute(db)).rows[0]?.n ?? 0,
    );
    const outboxRows = Number(
      (await sql<{ n: string }>`select count(*)::text as n from app.outbox where relayed_at >= ${new Date(tickStartedAt)}`.execute(db)).rows[0]?.n ?? 0,
    );
    const email = await services.queues.queue('email').getJobCounts('delayed', 'wait');
    const journeys = await services.queues.queue('journeys').getJobCounts('delayed', 'wait');
    const memoryAfter = await keyMemory(ctx.redis, ctx.prefix);
    const jobs = { email: (email.delayed ?? 0) - probeJobs, journeys: (journeys.delayed ?? 0) - probeWakes };
    say(
      `PostgreSQL: ${fmt(rows)} scheduled rows due then, ${fmt(outboxRows)} outbox rows relayed; Redis: email ${fmt(jobs.email)} delayed (${email.wait ?? 0} waiting), journeys ${fmt(jobs.journeys)} delayed; ` +
        `used_memory +${mb(memoryAfter.used - memoryBefore.used).toFixed(1)} MB, keys ${Object.entries(memoryAfter.byQueue).map(([q, b]) => `${q} ${mb(b).toFixed(1)} MB`).join(', ')}`,
    );
    // When BullMQ will fire each send: its delayed score is the fire time (ms) × 4096 plus a counter.
    const scores = await ctx.redis.zrange(services.queues.queue('email').keys.delayed as string, '0', '-1', 'WITHSCORES');
    const skews: number[] = [];
    for (let i = 1; i < scores.length; i += 2) {
      const fireAt = Math.floor(Number(scores[i]) / 4096);
      if (fireAt < due.getTime() + 3_600_000) skews.push(fireAt - due.getTime());
    }
    const fireSkew = spreadOf(skews);
    if (rows !== SENDS || jobs.email !== SENDS) throw new Error(`expected ${SENDS} scheduled sends, got ${rows} rows and ${jobs.email} delayed email jobs`);
    if (Date.now() > due.getTime() - 500) say(`WARNING: scheduling ended ${((Date.now() - due.getTime()) / 1_000).toFixed(1)} s after the due time; raise --ms-per-send`);

    // When due: the delayed set watched from just before the due time, then the sink until all arrived.
    sink.reset();
    const deadline = due.getTime() + SEND_BUDGET_MS;
    await sleep(Math.max(0, due.getTime() - 2_000 - Date.now()));
    const watching = watchPromotion(services.queues.queue('email').keys.delayed as string, SENDS, probeJobs, due.getTime(), deadline);
    await sleep(Math.max(0, due.getTime() - 300 - Date.now()));
    const endCpu = await startCpuWindow({ ...groups, sink: () => [process.pid] });
    const promotion = await watching;
    say(`delayed set (ms after due: jobs left): ${promotion.steps.map(([t, left]) => `${t.toFixed(0)}: ${left}`).join(', ')}`);
    let shown = 0;
    while (sink.receipts.length < SENDS && Date.now() < deadline) {
      await sleep(100);
      if (sink.receipts.length - shown >= SENDS / 4) {
        shown = sink.receipts.length;
        say(`  ${fmt(shown)} received`);
      }
    }
    const cpu = await endCpu();
    await sleep(500);
    const receipts = sink.receipts;
    const lateness = await sql<{ claimed: number | null; sent: number | null }>`
      select extract(epoch from claimed_at - due_at) * 1000 as claimed, extract(epoch from sent_at - due_at) * 1000 as sent
      from app.scheduled_sends where campaign_id = ${CAMPAIGN}`.execute(db);
    const states = await sql<{ state: string; n: string }>`select state, count(*)::text as n from app.scheduled_sends where campaign_id = ${CAMPAIGN} group by state order by state`.execute(db);
    const first = receipts[0]?.at ?? 0;
    const last = receipts[receipts.length - 1]?.at ?? 0;
    return {
      seedSeconds,
      ceiling,
      due,
      leadMs: due.getTime() - tickStartedAt,
      tickSeconds,
      relaySeconds,
      relayBusySeconds: relayBusyMs / 1_000,
      scheduleSeconds,
      pages,
      tick: { members: tick.members, sends: tick.sends },
      rows,
      outboxRows,
      leftAfterTick,
      fireSkew,
      jobs,
      memoryBefore,
      memoryAfter,
      promotion,
      claimed: spreadOf(lateness.rows.filter((r) => r.claimed !== null).map((r) => Number(r.claimed))),
      sent: spreadOf(lateness.rows.filter((r) => r.sent !== null).map((r) => Number(r.sent))),
      received: spreadOf(receipts.map((r) => r.at - due.getTime())),
      receivedCount: receipts.length,
      distinct: new Set(receipts.map((r) => r.messageId)).size,
      rate: receipts.length > 1 && last > first ? ((receipts.length - 1) * 1_000) / (last - first) : 0,
      states: states.rows.map((r) => `${fmt(Number(r.n))} ${r.state}`).join(', '),
      cpu,
      scheduleCpu,
      workerReadyMs,
      probeMsPerSend,
      estimateMs,
    };
  } finally {
    await stopProcess(worker);
  }
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const began = performance.now();
  const bench = await createBenchDatabase();
  const sink = await startSmtpSink();
  const rulesDir = path.join(bench.dataDir, 'rules');
  fs.cpSync(path.join(ROOT, 'rules'), rulesDir, { recursive: true });
  const env = bench.env({ SMTP_URL: sink.url, RULES_DIR: rulesDir });
  const config = loadConfig(env, ROOT);
  const log = createLogger({ level: 'warn', fd: 2 });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  let services: Services | undefined;
  try {
    services = await openServices({ config, keys: loadKeys(config, log), log, searchPath: process.env.PATH ?? '' });
    const r = await run(services, sink, env, { redis, rulesDir, prefix: bench.prefix, database: bench.name, admin: bench.admin });
    report(r, (performance.now() - began) / 1_000);
  } finally {
    await services?.releasers.releaseAll(log, 10_000);
    await deleteKeys(redis, bench.prefix).catch(() => undefined);
    redis.disconnect();
    await sink.close();
    await bench.drop();
  }
}

function cpuLine(what: string, cpu: CpuWindow | undefined, per: number, unit: string): string[] {
  if (!cpu) return [];
  const { bench = 0, worker = 0, postgres = 0, redis = 0 } = cpu.groups;
  const others = Math.max(0, cpu.machineMs - bench - worker - postgres - redis);
  const each = (ms: number) => (ms / Math.max(1, per)).toFixed(2);
  return [
    `- CPU ${what}: the machine ${(100 * cpu.machineBusy).toFixed(0)} % busy over ${os.cpus().length} cores for ${(cpu.wallMs / 1_000).toFixed(1)} s; CPU ms ${unit}: ` +
      `the bench process (the tick, the relay; the sink while sending) ${each(bench)}, the email worker ${each(worker)}, PostgreSQL backends ${each(postgres)}, Redis ${each(redis)}, everything else on the machine ${each(others)}`,
  ];
}

function report(r: Run, totalSeconds: number): void {
  const n = SENDS;
  const used = r.memoryAfter.used - r.memoryBefore.used;
  const keyDelta = (q: string) => (r.memoryAfter.byQueue[q] ?? 0) - (r.memoryBefore.byQueue[q] ?? 0);
  const emailKeys = keyDelta('email');
  const journeyKeys = keyDelta('journeys');
  const allKeys = Object.keys(r.memoryAfter.byQueue).reduce((a, q) => a + keyDelta(q), 0);
  // Judged on the worse of the two readings (used_memory has the allocator's overhead; keys miss it).
  const memory = Math.max(used, allKeys);
  const promoted = spreadOf(r.promotion.lateness);
  const complete = r.receivedCount === n && r.distinct === n;
  const scheduleMet = quick ? null : r.scheduleSeconds <= TARGET_SCHEDULE_S;
  const memoryMet = quick ? null : mb(memory) <= TARGET_REDIS_MB;
  const firingMet = quick ? null : promoted.n === n && promoted.p99 <= TARGET_LATENESS_MS;
  const verdict = (met: boolean | null) => (met === null ? 'not judged (--quick)' : met ? 'met' : 'missed');
  const ratio = r.scheduleSeconds / r.ceiling.seconds;
  const table = [
    '| measure | value | ceiling (same run) | target | verdict |',
    '| --- | ---: | ---: | --- | --- |',
    `| time to schedule ${fmt(n)} sends: tick start → every send a row in app.scheduled_sends and a delayed job, s | ${r.scheduleSeconds.toFixed(1)} | ${r.ceiling.seconds.toFixed(2)} (${ratio.toFixed(0)}×) | ≤ ${TARGET_SCHEDULE_S} s | ${verdict(scheduleMet)} |`,
    `| … of which the tick's pages (rows, outbox, relay after each page), s | ${r.tickSeconds.toFixed(1)} | — | — | — |`,
    `| … of which the outbox rows left after the tick, relayed, s | ${r.relaySeconds.toFixed(1)} | — | — | — |`,
    `| Redis memory while they wait (used_memory; keys under the prefix), MB | ${mb(used).toFixed(1)}; ${mb(allKeys).toFixed(1)} | ${mb(r.ceiling.memory.used).toFixed(1)}; ${mb(r.ceiling.memory.keyBytes).toFixed(1)} | ≤ ${TARGET_REDIS_MB} MB | ${verdict(memoryMet)} |`,
    `| … of which the email queue (the sends), MB | ${mb(emailKeys).toFixed(1)} | — | — | — |`,
    `| … of which the journeys queue (wake-ups: none when the journey waits for its own send), MB | ${mb(journeyKeys).toFixed(1)} | — | — | — |`,
    `| lateness, due → fired (promoted from delayed to wait, ready for a worker), ms: p50 / p99 / max | ${msOf(promoted.p50)} / ${msOf(promoted.p99)} / ${msOf(promoted.max)} | — | p99 ≤ ${fmt(TARGET_LATENESS_MS)} ms | ${verdict(firingMet)} |`,
    `| … part of it: the fire time BullMQ stored for each send job, minus the row's due time, ms: p50 / p99 / max | ${msOf(r.fireSkew.p50)} / ${msOf(r.fireSkew.p99)} / ${msOf(r.fireSkew.max)} | — | — | — |`,
    `| lateness, due → claimed by the email worker (row's claimed_at), ms: first / p50 / p99 / max | ${msOf(r.claimed.first)} / ${msOf(r.claimed.p50)} / ${msOf(r.claimed.p99)} / ${msOf(r.claimed.max)} | — | — (the backlog: all due at once) | — |`,
    `| lateness, due → received by the SMTP sink, ms: first / p50 / p99 / max | ${msOf(r.received.first)} / ${msOf(r.received.p50)} / ${msOf(r.received.p99)} / ${msOf(r.received.max)} | — | — (the backlog) | — |`,
  ].join('\n');
  const lines = [
    `- the path: a \`person_timezone\` broadcast (\`${CAMPAIGN}\`, daily at ${String(r.due.getUTCHours()).padStart(2, '0')}:${String(r.due.getUTCMinutes()).padStart(2, '0')} in each member's zone, UTC for the seeded people) ticked by runBroadcastTick as the broadcasts worker calls it: ` +
      `${fmt(r.tick.members)} members enrolled in ${r.pages} pages of up to ${fmt(BROADCAST_PAGE_SIZE)}, ${fmt(r.tick.sends)} sends; ${fmt(r.rows)} rows in app.scheduled_sends due at ${r.due.toISOString()} (all at that instant, ${(r.leadMs / 1_000).toFixed(0)} s after the tick started); ` +
      `${fmt(r.outboxRows)} outbox rows relayed (one a member: its send); Redis held ${fmt(r.jobs.email)} delayed email jobs and ${fmt(r.jobs.journeys)} delayed journey wake-ups`,
    `- the ceiling: the engine's producer alone adding ${fmt(n)} delayed \`email/send\` jobs (enqueueBulk, pages of 1,000, one after the other): ${r.ceiling.seconds.toFixed(2)} s, used_memory +${mb(r.ceiling.memory.used).toFixed(1)} MB, keys +${mb(r.ceiling.memory.keyBytes).toFixed(1)} MB (${fmt(r.ceiling.memory.jobHashes / n)} bytes a job hash)`,
    `- Redis memory a scheduled send: ${fmt(used / n)} bytes by used_memory, ${fmt(allKeys / n)} by the keys (email ${fmt(emailKeys / n)}, journeys ${fmt(journeyKeys / n)}); ${fmt(r.memoryAfter.keys - r.memoryBefore.keys)} keys added`,
    `- firing: the email queue's delayed set sampled ${fmt(r.promotion.samples)} times (every ${SAMPLE_MS} ms plus a round trip, by a thread of its own) from 300 ms before the due time; BullMQ promotes up to 1,000 due jobs each time a worker asks for a job; ${fmt(promoted.n)} of ${fmt(n)} promoted`,
    `- delivery: ${fmt(r.receivedCount)} messages received (${fmt(r.distinct)} distinct Message-IDs; rows: ${r.states}) at ${fmt(r.rate)} msg/s from first to last; due → row's sent_at p50 ${msOf(r.sent.p50)} ms, p99 ${msOf(r.sent.p99)} ms`,
    `- what limits the scheduling (${((1_000 * r.tickSeconds) / n).toFixed(2)} ms a member in the tick): each page's members are written with a handful of set-based statements ` +
      '(the enrolments, each with the state its start leaves it in, the sends, their outbox rows, the decisions: engine/automation/broadcast-page.ts), a few rows and their index entries a member; ' +
      'then the page\'s outbox rows go to Redis in one pipelined add (outbox.ts relayOutbox; BullMQ runs one Lua script a job) while the next page is written. ' +
      `The relays ran ${r.relayBusySeconds.toFixed(1)} s of the tick's ${r.tickSeconds.toFixed(1)} s; the producer alone (the ceiling) takes ${r.ceiling.seconds.toFixed(2)} s for as many jobs. ` +
      `The ${fmt(r.leftAfterTick)} outbox rows left after the tick were relayed here in ${r.relaySeconds.toFixed(1)} s`,
    `- what limits the memory: each member costs one delayed job, the send (${fmt(emailKeys / n)} bytes: its hash, whose options outgrow Redis's compact encoding, and its entry in the delayed set); ` +
      `the journey waits for its send with no job of its own (engine/rules/journey.ts waitsForItsSend); the producer alone takes ${mb(r.ceiling.memory.keyBytes).toFixed(1)} MB for as many jobs`,
    `- what limits the firing, first: the fire time BullMQ stored for each job (its add time plus its delay, the delay computed from the clock just before each pipelined add) is ${msOf(r.fireSkew.p50)} ms late at p50, ${msOf(r.fireSkew.max)} ms at most`,
    `- then: BullMQ moves due jobs to \`wait\` only when a worker asks for a job (up to 1,000 a time, an event-stream entry each, in one Lua call); ` +
      'the email worker asks 64 times as the sends come due (its concurrency), and after that once a job ends, so a due set larger than 64,000 waits in part for the first sends to finish; ' +
      `the worker's first claim came ${msOf(r.claimed.first)} ms after the due time`,
    ...cpuLine('while scheduling', r.scheduleCpu, n, 'a send'),
    ...cpuLine('from the due time to the last message', r.cpu, r.receivedCount, 'a message'),
    `- setup (no target): ${fmt(n)} subscribers stored through processEventBatch in ${r.seedSeconds.toFixed(1)} s; a probe broadcast to ${fmt(PROBE)} of them (due hours later, left out of every figure) scheduled at ${r.probeMsPerSend.toFixed(2)} ms a send, ` +
      `from which the due time was chosen (estimate ${(r.estimateMs / 1_000).toFixed(0)} s to schedule); the email worker ready in ${(r.workerReadyMs / 1_000).toFixed(1)} s; the whole run ${totalSeconds.toFixed(0)} s`,
  ].join('\n');
  say(`\n${table}\n\n${lines}\n`);
  if (!complete) say(`WARNING: ${r.receivedCount} messages received, ${r.distinct} distinct, ${n} expected`);

  const judgedNote = quick ? `--quick: ${fmt(n)} sends (the target is for 100,000), not judged` : undefined;
  const figures: Figure[] = [
    {
      name: 'delayed sends: time to schedule all of them',
      value: Number(r.scheduleSeconds.toFixed(2)),
      unit: 's',
      target: `≤ ${TARGET_SCHEDULE_S} s`,
      ceiling: { name: `engine producer alone: addBulk of ${fmt(n)} delayed email/send jobs`, value: Number(r.ceiling.seconds.toFixed(2)), unit: 's' },
      met: scheduleMet,
      note:
        judgedNote ??
        `a person_timezone broadcast tick (runBroadcastTick) then the outbox relay: tick ${r.tickSeconds.toFixed(1)} s, relay of the rest ${r.relaySeconds.toFixed(1)} s; pages of ${fmt(BROADCAST_PAGE_SIZE)} members written with a handful of set-based statements each, one delayed job a member, relayed a page at a time while the next is written`,
    },
    {
      name: 'delayed sends: Redis memory while they wait',
      value: Number(mb(memory).toFixed(1)),
      unit: 'MB',
      target: `≤ ${TARGET_REDIS_MB} MB`,
      ceiling: { name: `engine producer alone: ${fmt(n)} delayed email/send jobs`, value: Number(mb(Math.max(r.ceiling.memory.used, r.ceiling.memory.keyBytes)).toFixed(1)), unit: 'MB' },
      met: memoryMet,
      note:
        judgedNote ??
        `the worse of used_memory (${mb(used).toFixed(1)}) and the keys (${mb(allKeys).toFixed(1)}); the send jobs ${mb(emailKeys).toFixed(1)} MB, journey wake-ups ${mb(journeyKeys).toFixed(1)} MB (one job a member)`,
    },
    {
      name: 'delayed sends: p99 lateness, due → fired (ready for a worker)',
      value: Number(promoted.p99.toFixed(1)),
      unit: 'ms',
      target: `≤ ${fmt(TARGET_LATENESS_MS)} ms p99`,
      met: firingMet,
      note: judgedNote ?? `p50 ${msOf(promoted.p50)} ms, max ${msOf(promoted.max)} ms; all ${fmt(n)} due at one instant, so claims and deliveries follow at the send rate (next figures)`,
    },
    {
      name: 'delayed sends: p99 lateness, due → claimed by the email worker',
      value: Math.round(r.claimed.p99),
      unit: 'ms',
      met: null,
      note: `first ${msOf(r.claimed.first)} ms, p50 ${msOf(r.claimed.p50)} ms: the backlog of ${fmt(n)} sends due at once drained at ${fmt(r.rate)} msg/s`,
    },
    {
      name: 'delayed sends: p99 lateness, due → received by the SMTP sink',
      value: Math.round(r.received.p99),
      unit: 'ms',
      met: null,
      note: `first ${msOf(r.received.first)} ms, p50 ${msOf(r.received.p50)} ms; ${fmt(r.receivedCount)} of ${fmt(n)} received`,
    },
  ];
  writeResults({ scenario: 'delayed sends', quick, seconds: Number(totalSeconds.toFixed(1)), figures });
  if (!writeDocs || quick) {
    say(`${quick ? '--quick' : '--no-docs'}: docs/benchmarks.md left unchanged`);
    return;
  }
  const section = [
    '<!-- bench:delayed-sends:start -->',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, \`npm run bench:delayed-sends${quick ? ' -- --quick' : ''}\` (${totalSeconds.toFixed(0)} s). ` +
      'PostgreSQL, Redis, the SMTP sink and the bench process (which runs the tick, as the broadcasts worker would) and one email worker process share the machine. ' +
      `${fmt(n)} subscribers (addresses in the vault, consent, newsletter membership) are reached by a broadcast sent at a wall time in each member's zone (\`person_timezone: true\`), ` +
      'the campaign shape with which the engine schedules sends ahead in bulk (a send deferred by quiet hours takes the same path): its tick writes each page\'s send rows set-based and relays them to Redis as delayed jobs, one a member (the journey waits for its send without a job of its own). ' +
      'All the sends are due at one instant (the cron is whole minutes). "Fired" is when BullMQ moves a delayed job to `wait`, ready for a worker (the delayed set sampled every few ms); ' +
      '"claimed" is the row\'s claimed_at (the email worker claims a send when it takes its job, one of 64 at a time), so with every send due at once the claim and delivery figures measure the backlog draining at the send rate, not the scheduler. ' +
      'The ceiling is the engine\'s producer alone adding the same number of delayed `email/send` jobs.',
    '',
    table,
    '',
    lines,
    '<!-- bench:delayed-sends:end -->',
  ].join('\n');
  writeDocsSection('bench:delayed-sends', section, '## Delayed sends (`npm run bench:delayed-sends`)');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:delayed-sends failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

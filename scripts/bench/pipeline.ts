/**
 * `npm run bench:pipeline`: the whole pipeline end to end, as deployed: one `consentflow api`, one
 * `consentflow worker --queues events,journeys` (BENCH_PIPELINE_WORKERS=2: a second worker process
 * for the events queue), PostgreSQL and Redis, with the example rules (rules/ as shipped) and a
 * database of 1,000,000 known people (scripts/bench/pipeline-seed.ts). Events arrive through the
 * real HTTP API: batches of 50 posted to /v1/batch at a fixed rate (scripts/bench/pipeline-load.ts).
 *
 * 1. Throughput: 10,000 events/s offered for 5 minutes (after a warm-up), the load pausing while
 *    more than 5 s of events wait in the pipeline, so the stored rate is what the pipeline sustains
 *    with a bounded backlog. Reported: events/s accepted by the API and stored by the worker (every
 *    processed event leaves an app.event_receipts row), the backlog at the window's start and end,
 *    and CPU per 1,000 events of each process group (/proc).
 * 2. Event → decision latency at 5,000 events/s (half the target), open loop: probe events (a
 *    `Product Added` of a probe person, which the abandoned_cart rule decides on) ride in the load's
 *    batches (scripts/bench/pipeline-probes.ts). When the run sustained less than 10,000 events/s,
 *    5,000 a second builds a backlog and the latency measures it; the latency is then measured a
 *    second time at half the rate the run did sustain (for reference, not judged).
 * 3. Cost growth: the same load against a database of 10,000 people, compared with the first
 *    BENCH_PIPELINE_GROWTH_SECONDS of the 1,000,000-people window (both after the same warm-up).
 * 4. Memory: the worker's VmRSS sampled through the run (max, slope); Redis memory before the load
 *    and after the backlog drained (keys under the run's prefix, and INFO used_memory), per
 *    1,000,000 events processed.
 *
 * Options: `--quick` (10,000 people, 20 s, the growth pair 1,000 vs 10,000, nothing judged);
 * `--profile` (the worker runs with --cpu-prof; where its time went is printed; docs unchanged);
 * `--no-docs`; `--results FILE` (scripts/bench/results.ts). Environment: BENCH_PIPELINE_PROFILES
 * (1000000), BENCH_PIPELINE_SECONDS (300), BENCH_PIPELINE_RATE (10000 offered),
 * BENCH_PIPELINE_LATENCY_RATE (5000), BENCH_PIPELINE_LATENCY_SECONDS (60),
 * BENCH_PIPELINE_GROWTH_PROFILES (10000), BENCH_PIPELINE_GROWTH_SECONDS (120; 0 skips the growth
 * run), BENCH_PIPELINE_WORKERS (1).
 *
 * Needs PostgreSQL and Redis (DATABASE_URL / REDIS_URL, or the local defaults) and a build
 * (`npm run build`: the processes run bin/consentflow.js); uses its own databases and queue prefixes
 * and removes them afterwards.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type Concern, formatProfileSummary, summarizeProfile } from './cpu-profile';
import { createBenchDatabase, freePort, machine, REDIS_URL, runNode, startProcess, stopProcess, writeDocsSection } from './harness';
import { BATCH_SIZE, Load } from './pipeline-load';
import { type ProbeTimes, Probes } from './pipeline-probes';
import { type CpuBetween, cpuBetween, floorSlope, type Sample, Sampler, slope } from './pipeline-sample';
import { type SeedResult, seedPeople } from './pipeline-seed';
import { deleteKeys, forEachKeySize, redisMemory, type RedisMemory } from './redis-memory';
import { type Figure, type ScenarioResults, writeResults } from './results';

const scriptStarted = performance.now();
const argv = process.argv;
const quick = argv.includes('--quick');
const profiling = argv.includes('--profile');
const writeDocs = !argv.includes('--no-docs') && !profiling;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: expected a whole number, got '${raw}'`);
  return n;
}

const TARGET_RATE = 10_000;
const TARGET_PROFILES = 1_000_000;
const TARGET_SECONDS = 300;
const TARGET_P50_MS = 20;
const TARGET_P99_MS = 100;
const TARGET_GROWTH = 1.2;
const TARGET_RSS_MB = 300;
const TARGET_REDIS_MB = 20;
/**
 * "Flat": the RSS floor (the lowest sample of each minute) rising less than this over the window
 * (less than 10 MB over 5 minutes). The slope fitted to every sample is reported too; over the
 * collector's sawtooth it swung from -4.7 to +4.2 MB/min between two runs whose first and last
 * samples differed by 5 to 16 MB.
 */
const FLAT_MB_PER_MIN = 2;

const PROFILES = envInt('BENCH_PIPELINE_PROFILES', quick ? 10_000 : TARGET_PROFILES);
const SECONDS = envInt('BENCH_PIPELINE_SECONDS', quick ? 20 : TARGET_SECONDS);
const OFFERED = envInt('BENCH_PIPELINE_RATE', TARGET_RATE);
const LATENCY_RATE = envInt('BENCH_PIPELINE_LATENCY_RATE', TARGET_RATE / 2);
const LATENCY_SECONDS = envInt('BENCH_PIPELINE_LATENCY_SECONDS', quick ? 10 : 60);
const GROWTH_PROFILES = envInt('BENCH_PIPELINE_GROWTH_PROFILES', quick ? 1_000 : 10_000);
const GROWTH_SECONDS = Math.min(SECONDS, envInt('BENCH_PIPELINE_GROWTH_SECONDS', quick ? 20 : 120));
const WORKERS = Math.max(1, envInt('BENCH_PIPELINE_WORKERS', 1));
const WARMUP_SECONDS = quick ? 5 : 15;
/** The load pauses while more than this many seconds of the offered rate wait in the pipeline. */
const BACKLOG_CAP_SECONDS = 5;
const PROBE_PEOPLE = 200;
const PROBES_PER_SECOND = 20;
const SAMPLE_MS = quick ? 2_000 : 5_000;
const MAX_IN_FLIGHT = 64;

/** Whether this run has the size the targets name (a reduced run reports figures, judges nothing it cannot). */
const fullSize = PROFILES >= TARGET_PROFILES && SECONDS >= TARGET_SECONDS && !quick && !profiling;

const CONCERNS: readonly Concern[] = [
  ['logging (pino)', /node_modules\/(pino|sonic-boom|thread-stream)|\/dist\/engine\/log\//],
  ['PostgreSQL client (kysely, pg)', /node_modules\/(kysely|pg|pg-protocol|pg-pool|pg-types)\//],
  ['queue (bullmq, ioredis, msgpackr)', /node_modules\/(bullmq|ioredis|@ioredis|msgpackr)\//],
  ['payload checks (zod)', /node_modules\/zod\//],
  ['vault crypto and identity', /\/dist\/engine\/(vault|identity)\//],
  ['rules and automation', /\/dist\/engine\/(rules|automation)\//],
  ['queue payload sealing', /\/dist\/engine\/queues\//],
  ['rest of the engine', /\/dist\/(engine|workers)\//],
  ['diagnostics (statement counter)', /scripts\/bench\/count-queries\.js/],
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const say = (line: string) => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : n === Number.POSITIVE_INFINITY ? '∞' : 'n/a';
const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;

// ── one run: a database of N people, the processes, the load ────────────────────────────────────

interface Point {
  readonly sample: Sample;
  /** Exact count(*) of app.event_receipts at the sample. */
  readonly processed: number;
  readonly accepted: number;
}

interface Window {
  readonly seconds: number;
  readonly offered: number;
  readonly acceptedPerSec: number;
  readonly storedPerSec: number;
  readonly linkedPerSec: number;
  readonly decisionsPerSec: number;
  readonly stored: number;
  readonly accepted: number;
  readonly backlogStart: number;
  readonly backlogEnd: number;
  readonly jobsStart: number;
  readonly jobsEnd: number;
  readonly cpu: CpuBetween;
  readonly httpP50: number;
  readonly httpP99: number;
  readonly skippedPaused: number;
  readonly skippedInFlight: number;
}

interface RunOutcome {
  readonly profiles: number;
  readonly seed: SeedResult;
  readonly window: Window;
  /** The first GROWTH_SECONDS of the window (for the cost-growth comparison). */
  readonly growth?: Window;
  readonly drain: { readonly events: number; readonly seconds: number; readonly complete: boolean };
  readonly latency?: LatencyRun;
  /** At half the rate the throughput window sustained, when that is below the target's. */
  readonly latencyHalf?: LatencyRun;
  readonly rss: { readonly worker: RssSeries; readonly api: RssSeries };
  readonly redis: { readonly before: RedisMemory; readonly after: RedisMemory; readonly processed: number; readonly byQueue: Record<string, number>; readonly delayedWakes: number };
  readonly rows: Readonly<Record<string, number>>;
  readonly visitors: number;
  readonly profile?: string;
  readonly versions: { readonly postgres: string; readonly redis: string };
}

interface LatencyRun {
  readonly rate: number;
  readonly window: Window;
  readonly probes: readonly ProbeTimes[];
  readonly polls: number;
}

interface RssSeries {
  readonly max: number;
  readonly first: number;
  readonly last: number;
  readonly slopePerMin: number;
  /** Of the lowest sample of each minute (floorSlope): what judges "flat". */
  readonly floorSlopePerMin: number;
  readonly samples: number;
}

/** Bytes of the keys under the prefix, by queue (the key's second segment). */
async function keysByQueue(redis: Redis, prefix: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await forEachKeySize(redis, prefix, (key, bytes) => {
    const queue = key.slice(prefix.length + 1).split(':')[0] ?? '?';
    out[queue] = (out[queue] ?? 0) + bytes;
  });
  return out;
}

function rssSeries(samples: readonly Sample[], name: string): RssSeries {
  const points = samples.flatMap((s) => {
    const mb = s.rss[name];
    return mb === undefined ? [] : [[s.at / 60_000, mb] as const];
  });
  const values = points.map((p) => p[1]);
  return {
    max: values.length ? Math.max(...values) : NaN,
    first: values[0] ?? NaN,
    last: values[values.length - 1] ?? NaN,
    slopePerMin: slope(points),
    floorSlopePerMin: floorSlope(points, 1),
    samples: points.length,
  };
}

async function runPipeline(label: string, profiles: number, seconds: number, options: { latency: boolean; growthSeconds?: number }): Promise<RunOutcome> {
  say(`\n== ${label}: ${fmt(profiles)} people, ${seconds} s at ${fmt(OFFERED)} events/s offered ==`);
  const bench = await createBenchDatabase();
  const port = await freePort();
  const env = bench.env({ HTTP_PORT: String(port) });
  const children: ChildProcess[] = [];
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const eventsQueue = new Queue('events', { connection: redis, prefix: bench.prefix });
  const journeysQueue = new Queue('journeys', { connection: redis, prefix: bench.prefix });
  const db = new pg.Client({ connectionString: bench.url });
  const probeDb = new pg.Client({ connectionString: bench.url });
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-pipeline-prof-'));
  const queryFile = path.join(profileDir, 'queries.json');
  let load: Load | undefined;
  let sampler: Sampler | undefined;
  try {
    await runNode(['bin/consentflow.js', 'migrate'], env);
    const source = JSON.parse(await runNode(['bin/consentflow.js', 'sources', 'add', 'bench pipeline', '--json'], env)) as { id: string; writeKey: string };
    await db.connect();
    await probeDb.connect();
    say(`seeding ${fmt(profiles)} people:`);
    const seed = await seedPeople(db, {
      people: profiles,
      sourceId: source.id,
      masterKey: Buffer.from(env.MASTER_KEY as string, 'base64'),
      pseudonymKey: Buffer.from(env.PSEUDONYM_KEY as string, 'base64'),
      log: say,
    });
    say(`seeded in ${seed.seconds.toFixed(1)} s`);

    const api = await startProcess(process.execPath, ['bin/consentflow.js', 'api'], env, 'API listening');
    children.push(api);
    const workers: ChildProcess[] = [];
    for (let w = 0; w < WORKERS; w++) {
      const queues = w === 0 ? 'events,journeys' : 'events';
      const diagnostics = profiling && w === 0 ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--require', './scripts/bench/count-queries.js'] : [];
      const args = [...diagnostics, 'bin/consentflow.js', 'worker', '--queues', queues];
      const worker = await startProcess(process.execPath, args, { ...env, ...(diagnostics.length ? { BENCH_QUERY_COUNT_FILE: queryFile } : {}) }, 'workers started');
      workers.push(worker);
      children.push(worker);
    }
    const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? NaN);
    const pidsOf = async (where: string, values: unknown[] = []) => (await bench.admin.query<{ pid: number }>(`select pid from pg_stat_activity where ${where}`, values)).rows.map((r) => r.pid);

    load = new Load({ url: `http://127.0.0.1:${port}`, writeKey: source.writeKey, people: profiles, firstPerson: options.latency ? PROBE_PEOPLE : 0, runId: randomBytes(3).toString('hex'), maxInFlight: MAX_IN_FLIGHT });
    const theLoad = load;
    sampler = new Sampler({
      groups: {
        api: () => (api.pid ? [api.pid] : []),
        worker: () => workers.flatMap((w) => (w.pid ? [w.pid] : [])),
        postgres: () => pidsOf('datname = $1', [bench.name]),
        postgresShared: () => pidsOf('datname is null'),
        redis: () => (Number.isFinite(redisPid) ? [redisPid] : []),
        load: () => [process.pid],
      },
      rss: { worker: () => workers[0]?.pid, api: () => api.pid },
      db,
      eventsQueue,
      accepted: () => theLoad.counters.accepted,
    });
    const exactCount = async () => Number((await db.query<{ n: string }>('select count(*)::text as n from app.event_receipts')).rows[0]?.n ?? 0);
    const point = async (): Promise<Point> => {
      const sample = await sampler!.now();
      return { sample, processed: await exactCount(), accepted: sample.accepted };
    };
    const redisBefore = await redisMemory(redis, bench.prefix, 'events');
    const processedBefore = await exactCount();
    sampler.start(SAMPLE_MS);

    // The backlog: events accepted but not processed yet (n_tup_ins lags by about a second: it overstates a little).
    let latestProcessed = 0;
    const capEvents = BACKLOG_CAP_SECONDS * OFFERED;
    const backlogWatch = setInterval(() => {
      void db
        .query<{ n: string }>(`select n_tup_ins::text as n from pg_stat_user_tables where relid = 'app.event_receipts'::regclass`)
        .then((r) => (latestProcessed = Number(r.rows[0]?.n ?? 0)))
        .catch(() => undefined);
    }, 250);
    load.paused = () => theLoad.counters.accepted - latestProcessed > capEvents;

    const windowOf = (a: Point, b: Point, offered: number, responses: number[]): Window => {
      const s = (b.sample.at - a.sample.at) / 1_000;
      const sorted = [...responses].sort((x, y) => x - y);
      return {
        seconds: s,
        offered,
        acceptedPerSec: (b.accepted - a.accepted) / s,
        storedPerSec: (b.processed - a.processed) / s,
        linkedPerSec: (b.sample.linkedEvents - a.sample.linkedEvents) / s,
        decisionsPerSec: (b.sample.decisions - a.sample.decisions) / s,
        stored: b.processed - a.processed,
        accepted: b.accepted - a.accepted,
        backlogStart: a.accepted - a.processed,
        backlogEnd: b.accepted - b.processed,
        jobsStart: a.sample.jobsWaiting + a.sample.jobsActive,
        jobsEnd: b.sample.jobsWaiting + b.sample.jobsActive,
        cpu: cpuBetween(a.sample, b.sample),
        httpP50: quantile(sorted, 0.5),
        httpP99: quantile(sorted, 0.99),
        skippedPaused: 0,
        skippedInFlight: 0,
      };
    };
    const progress = setInterval(() => {
      const s = sampler?.samples[sampler.samples.length - 1];
      if (s) say(`  ${new Date(s.at).toISOString().slice(11, 19)} accepted ${fmt(s.accepted)}, processed ~${fmt(s.receipts)}, backlog ~${fmt(s.accepted - s.receipts)} events (${s.jobsWaiting} jobs waiting), worker RSS ${fmt(s.rss.worker ?? NaN)} MB`);
    }, quick ? 5_000 : 30_000);

    // 1. Throughput.
    load.setRate(OFFERED);
    await sleep(WARMUP_SECONDS * 1_000);
    load.responseMs.length = 0;
    const skipped0 = { paused: load.counters.skippedPaused, inFlight: load.counters.skippedInFlight };
    const start = await point();
    let growth: Window | undefined;
    if (options.growthSeconds !== undefined && options.growthSeconds < seconds) {
      await sleep(options.growthSeconds * 1_000 - (Date.now() - start.sample.at));
      growth = windowOf(start, await point(), OFFERED, load.responseMs);
      await sleep(seconds * 1_000 - (Date.now() - start.sample.at));
    } else {
      await sleep(seconds * 1_000);
    }
    const end = await point();
    const window = {
      ...windowOf(start, end, OFFERED, load.responseMs),
      skippedPaused: load.counters.skippedPaused - skipped0.paused,
      skippedInFlight: load.counters.skippedInFlight - skipped0.inFlight,
    };
    if (options.growthSeconds !== undefined && growth === undefined) growth = window;
    await load.stop();

    const drainOnce = async (budgetMs: number) => {
      const started = Date.now();
      const from = await exactCount();
      let processed = from;
      while (Date.now() - started < budgetMs) {
        processed = await exactCount();
        const counts = await eventsQueue.getJobCounts('wait', 'prioritized', 'active', 'delayed');
        if (processed >= theLoad.counters.accepted && (counts.wait ?? 0) + (counts.prioritized ?? 0) + (counts.active ?? 0) === 0) break;
        await sleep(500);
      }
      return { events: processed - from, seconds: (Date.now() - started) / 1_000, complete: processed >= theLoad.counters.accepted };
    };
    const drain = await drainOnce(quick ? 60_000 : 300_000);
    say(`throughput window: ${fmt(window.storedPerSec)} events/s processed, ${fmt(window.acceptedPerSec)} accepted; drained ${fmt(drain.events)} in ${drain.seconds.toFixed(1)} s`);

    // 2. Latency at half the target rate, open loop, with probes; and, when the pipeline sustained
    // less than twice that, again at half the rate it did sustain (what a probe waits for when the
    // pipeline keeps up, beside the queueing the target rate causes).
    const latencyAt = async (rate: number): Promise<LatencyRun> => {
      const probes = new Probes(probeDb, PROBE_PEOPLE, PROBES_PER_SECOND, randomBytes(3).toString('hex'));
      theLoad.probe = () => probes.next();
      theLoad.paused = () => false;
      probes.start();
      theLoad.setRate(rate);
      await sleep(5_000);
      probes.recording = true;
      theLoad.responseMs.length = 0;
      const a = await point();
      await sleep(LATENCY_SECONDS * 1_000);
      const b = await point();
      probes.recording = false;
      const latencyWindow = windowOf(a, b, rate, theLoad.responseMs);
      await theLoad.stop();
      // Every probe's decision comes once the backlog it joined is processed.
      await probes.finish(quick ? 120_000 : 300_000);
      theLoad.probe = undefined;
      const more = await drainOnce(quick ? 60_000 : 300_000);
      say(`latency window at ${fmt(rate)}/s: ${fmt(latencyWindow.storedPerSec)} events/s processed; ${probes.results.length} probes; drained ${fmt(more.events)} in ${more.seconds.toFixed(1)} s`);
      return { rate, window: latencyWindow, probes: probes.results, polls: probes.pollCount };
    };
    let latency: RunOutcome['latency'];
    let latencyHalf: RunOutcome['latencyHalf'];
    if (options.latency) {
      latency = await latencyAt(LATENCY_RATE);
      const half = Math.round(window.storedPerSec / 2 / 100) * 100;
      if (window.storedPerSec < 2 * LATENCY_RATE && half >= 100) latencyHalf = await latencyAt(half);
    }
    clearInterval(progress);
    clearInterval(backlogWatch);
    await sampler.stop();

    // Memory after the backlog drained: what stays in Redis once the events are processed.
    await sleep(1_000);
    const redisAfter = await redisMemory(redis, bench.prefix, 'events');
    const byQueue = await keysByQueue(redis, bench.prefix);
    const delayedWakes = (await journeysQueue.getJobCounts('delayed')).delayed ?? 0;
    const processed = (await exactCount()) - processedBefore;
    const windowSamples = sampler.samples.filter((s) => s.at >= start.sample.at && s.at <= end.sample.at);
    const rss = { worker: rssSeries(windowSamples, 'worker'), api: rssSeries(windowSamples, 'api') };

    for (const child of children.reverse()) await stopProcess(child);
    children.length = 0;
    let profile = '';
    if (profiling) {
      const file = fs.readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) profile = formatProfileSummary(summarizeProfile(path.join(profileDir, file), CONCERNS, 15), processed);
      if (fs.existsSync(queryFile)) {
        // The worker processed every event of the run (one worker process when profiling).
        const shapes = JSON.parse(fs.readFileSync(queryFile, 'utf8')) as Array<{ sql: string; n: number }>;
        const total = shapes.reduce((a, q) => a + q.n, 0);
        const per = (n: number) => fmt((1_000 * n) / Math.max(1, processed), 1);
        profile += [
          `\nstatements the worker sent: ${fmt(total)}, ${per(total)} per 1,000 events (${per(shapes.find((q) => q.sql.toLowerCase() === 'begin')?.n ?? 0)} transactions per 1,000: one a job); the most frequent:`,
          ...shapes.slice(0, 25).map((q) => `  ${per(q.n).padStart(7)} per 1,000 events  ${q.sql}`),
        ].join('\n');
      }
    }
    const rows: Record<string, number> = {};
    for (const table of ['app.profiles', 'app.event_receipts', 'app.events', 'app.event_counts', 'app.decisions', 'app.enrolments', 'app.segment_state', 'app.outbox', 'vault.identities', 'vault.subject_keys']) {
      rows[table] = Number((await db.query<{ n: string }>(`select count(*)::text as n from ${table}`)).rows[0]?.n ?? 0);
    }
    return {
      profiles,
      seed,
      window,
      ...(growth ? { growth } : {}),
      drain,
      ...(latency ? { latency } : {}),
      ...(latencyHalf ? { latencyHalf } : {}),
      rss,
      redis: { before: redisBefore, after: redisAfter, processed, byQueue, delayedWakes },
      rows,
      visitors: load.counters.visitors,
      versions: {
        postgres: (await db.query<{ v: string }>("select current_setting('server_version') as v")).rows[0]?.v.split(' ')[0] ?? '?',
        redis: /redis_version:([^\r\n]+)/.exec(await redis.info('server'))?.[1] ?? '?',
      },
      ...(profile ? { profile } : {}),
    };
  } finally {
    await load?.stop().catch(() => undefined);
    load?.close();
    await sampler?.stop().catch(() => undefined);
    for (const child of children.reverse()) await stopProcess(child).catch(() => undefined);
    // Every key of the run's prefix (queues, job schedulers the processes registered).
    await deleteKeys(redis, bench.prefix).catch(() => undefined);
    await eventsQueue.close();
    await journeysQueue.close();
    await db.end().catch(() => undefined);
    await probeDb.end().catch(() => undefined);
    redis.disconnect();
    await bench.drop();
    fs.rmSync(profileDir, { recursive: true, force: true });
  }
}

// ── the report ──────────────────────────────────────────────────────────────────────────────────

/**
 * CPU ms per event of each group over a window (= CPU s per 1,000 events): per event processed, but
 * the API's and the load generator's per event accepted (they differ when a backlog grows).
 */
function perEvent(w: Window): { api: number; worker: number; engine: number; postgres: number; postgresShared: number; redis: number; load: number; machine: number; rest: number; stores: number } {
  const n = Math.max(1, w.stored);
  const accepted = Math.max(1, w.accepted);
  const g = w.cpu.groups;
  const ms = (name: string) => g[name] ?? 0;
  const api = ms('api') / accepted;
  const worker = ms('worker') / n;
  const postgres = ms('postgres') / n;
  const postgresShared = ms('postgresShared') / n;
  const redis = ms('redis') / n;
  const load = ms('load') / accepted;
  const others = w.cpu.machineMs - Object.values(g).reduce((a, b) => a + b, 0);
  return {
    api,
    worker,
    engine: api + worker,
    postgres,
    postgresShared,
    redis,
    load,
    machine: w.cpu.machineMs / n,
    rest: others / n,
    stores: api + worker + postgres + postgresShared + redis,
  };
}

interface Verdicts {
  readonly throughput: boolean | null;
  readonly p50: boolean | null;
  readonly p99: boolean | null;
  readonly growthCpu: boolean | null;
  readonly growthRate: boolean | null;
  readonly rss: boolean | null;
  readonly redis: boolean | null;
}

interface LatencyStats {
  readonly probes: number;
  readonly decided: number;
  readonly lost: number;
  /** Send → decision committed, ms, sorted; a lost probe is +Infinity. */
  readonly committed: readonly number[];
  readonly p50: number;
  readonly p99: number;
  readonly line: string;
}

function latencyStats(run: LatencyRun | undefined): LatencyStats {
  const probes = (run?.probes ?? []).filter((p) => p.answeredOk);
  const done = probes.filter((p) => p.committed !== undefined);
  // A probe whose decision never came counts as later than any other (it stays in the percentiles).
  const committed = probes.map((p) => (p.committed === undefined ? Number.POSITIVE_INFINITY : p.committed - p.sent)).sort((a, b) => a - b);
  const decided = done.map((p) => (p.decided as number) - p.sent).sort((a, b) => a - b);
  const answered = probes.filter((p) => p.answered !== undefined).map((p) => (p.answered as number) - p.sent).sort((a, b) => a - b);
  const lost = probes.length - done.length;
  const outcomes = [...new Set(done.map((p) => p.outcome))].map((o) => `${o} ${done.filter((p) => p.outcome === o).length}`).join(', ');
  const line =
    `${probes.length} probes at ${fmt(run?.rate ?? NaN)} events/s offered (\`Product Added\` of ${PROBE_PEOPLE} probe people, ${PROBES_PER_SECOND}/s, inside the load's batches), ${done.length} decided, ${lost} lost; ` +
    `send → decision committed (seen by a poll every 5 ms) p50 ${fmt(quantile(committed, 0.5))} ms, p90 ${fmt(quantile(committed, 0.9))} ms, p99 ${fmt(quantile(committed, 0.99))} ms, max ${fmt(committed[committed.length - 1] ?? NaN)} ms` +
    `${lost ? ' (a lost probe counts as infinitely late)' : ''}; send → decided_at (the worker's transaction start) p50 ${fmt(quantile(decided, 0.5))} ms, p99 ${fmt(quantile(decided, 0.99))} ms; ` +
    `send → the API's 200 p50 ${fmt(quantile(answered, 0.5))} ms, p99 ${fmt(quantile(answered, 0.99))} ms; outcomes: ${outcomes || 'none'}`;
  return { probes: probes.length, decided: done.length, lost, committed, p50: quantile(committed, 0.5), p99: quantile(committed, 0.99), line };
}

const verdict = (met: boolean | null) => (met === null ? 'not judged' : met ? 'met' : 'missed');

function report(main: RunOutcome, small: RunOutcome | undefined): void {
  const w = main.window;
  const cost = perEvent(w);
  const target = latencyStats(main.latency);
  const { p50, p99, lost } = target;
  const half = main.latencyHalf ? latencyStats(main.latencyHalf) : undefined;

  // Cost growth: the large database's first GROWTH_SECONDS against the small one's, same load, same warm-up.
  const large = main.growth;
  const smallW = small?.growth ?? small?.window;
  const growthCpu = large && smallW ? perEvent(large).stores / perEvent(smallW).stores : NaN;
  const growthEngine = large && smallW ? perEvent(large).engine / perEvent(smallW).engine : NaN;
  const growthRate = large && smallW ? smallW.storedPerSec / large.storedPerSec : NaN;

  const redisKeys = main.redis.after.keyBytes - main.redis.before.keyBytes;
  const redisUsed = main.redis.after.used - main.redis.before.used;
  const perMillion = (bytes: number) => (bytes / Math.max(1, main.redis.processed)) * 1e6 / 1e6;
  const redisWorstMb = Math.max(perMillion(redisKeys), perMillion(redisUsed));

  const judged = !quick && !profiling;
  const v: Verdicts = {
    throughput: fullSize ? w.storedPerSec >= TARGET_RATE && w.backlogEnd <= w.backlogStart + BACKLOG_CAP_SECONDS * OFFERED : null,
    p50: judged && main.profiles >= TARGET_PROFILES && target.probes > 0 ? p50 <= TARGET_P50_MS && lost === 0 : null,
    p99: judged && main.profiles >= TARGET_PROFILES && target.probes > 0 ? p99 <= TARGET_P99_MS && lost === 0 : null,
    growthCpu: judged && main.profiles >= TARGET_PROFILES && small?.profiles === 10_000 && Number.isFinite(growthCpu) ? growthCpu <= TARGET_GROWTH : null,
    growthRate: judged && main.profiles >= TARGET_PROFILES && small?.profiles === 10_000 && Number.isFinite(growthRate) ? growthRate <= TARGET_GROWTH : null,
    rss: fullSize ? main.rss.worker.max <= TARGET_RSS_MB && main.rss.worker.floorSlopePerMin <= FLAT_MB_PER_MIN : null,
    redis: judged && main.redis.processed >= 1_000_000 ? redisWorstMb <= TARGET_REDIS_MB : null,
  };

  const ms2 = (x: number) => fmt(x, 2);
  const cpuRow = (name: string, c: ReturnType<typeof perEvent>) =>
    `| ${name} | ${ms2(c.api)} | ${ms2(c.worker)} | ${ms2(c.engine)} | ${ms2(c.postgres)} | ${ms2(c.postgresShared)} | ${ms2(c.redis)} | ${ms2(c.load)} | ${ms2(c.rest)} | ${ms2(c.machine)} |`;
  const lat = main.latency?.window;
  const table = [
    '| scenario | measured | target | verdict |',
    '| --- | ---: | --- | --- |',
    `| end to end, ${fmt(main.profiles)} people: events/s processed over ${fmt(w.seconds)} s (${fmt(OFFERED)}/s offered) | ${fmt(w.storedPerSec)} | ≥ ${fmt(TARGET_RATE)} sustained for 5 min | ${verdict(v.throughput)} |`,
    `| … accepted by the API | ${fmt(w.acceptedPerSec)} | — | — |`,
    `| … CPU s per 1,000 events, API + worker | ${ms2(cost.engine)} | reported | — |`,
    `| event → decision committed at ${fmt(LATENCY_RATE)} events/s offered: p50 ms | ${fmt(p50)} | ≤ ${TARGET_P50_MS} ms | ${verdict(v.p50)} |`,
    `| … p99 ms | ${fmt(p99)} | ≤ ${TARGET_P99_MS} ms | ${verdict(v.p99)} |`,
    ...(half && main.latencyHalf
      ? [`| … at ${fmt(main.latencyHalf.rate)} events/s offered (half what this run sustained): p50 / p99 ms | ${fmt(half.p50)} / ${fmt(half.p99)} | (for reference) | — |`]
      : []),
    ...(small
      ? [
          `| cost growth: CPU per event (API, worker, PostgreSQL, Redis), ${fmt(main.profiles)} ÷ ${fmt(small.profiles)} people | ${fmt(growthCpu, 2)}× | ≤ ${TARGET_GROWTH}× | ${verdict(v.growthCpu)} |`,
          `| cost growth: events/s, ${fmt(small.profiles)} ÷ ${fmt(main.profiles)} people | ${fmt(growthRate, 2)}× | ≤ ${TARGET_GROWTH}× | ${verdict(v.growthRate)} |`,
        ]
      : []),
    `| worker RSS over the window: max MB (floor slope; slope of all samples, MB/min) | ${fmt(main.rss.worker.max)} (${fmt(main.rss.worker.floorSlopePerMin, 2)}; ${fmt(main.rss.worker.slopePerMin, 2)}) | ≤ ${TARGET_RSS_MB} MB, flat | ${verdict(v.rss)} |`,
    `| Redis growth per 1,000,000 events processed, MB | ${fmt(redisWorstMb, 1)} | ≤ ${TARGET_REDIS_MB} MB | ${verdict(v.redis)} |`,
  ].join('\n');
  const cpuTable = [
    '| CPU s per 1,000 events processed (API, load generator: per 1,000 accepted) | API | worker | API + worker | PostgreSQL (bench database) | PostgreSQL (shared background) | Redis | load generator | everything else on the machine | machine |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    cpuRow(`throughput window, ${fmt(main.profiles)} people`, cost),
    ...(lat ? [cpuRow(`latency window (${fmt(LATENCY_RATE)}/s offered)`, perEvent(lat))] : []),
    ...(main.latencyHalf ? [cpuRow(`latency window (${fmt(main.latencyHalf.rate)}/s offered)`, perEvent(main.latencyHalf.window))] : []),
    ...(main.growth && main.growth !== w ? [cpuRow(`first ${fmt(main.growth.seconds)} s, ${fmt(main.profiles)} people`, perEvent(main.growth))] : []),
    ...(smallW && small ? [cpuRow(`first ${fmt(smallW.seconds)} s, ${fmt(small.profiles)} people`, perEvent(smallW))] : []),
  ].join('\n');
  const windowLine = (name: string, x: Window) =>
    `- ${name}: offered ${fmt(x.offered)} events/s; accepted ${fmt(x.acceptedPerSec)}/s (HTTP p50 ${fmt(x.httpP50)} ms, p99 ${fmt(x.httpP99)} ms); processed ${fmt(x.storedPerSec)}/s, ` +
    `of which stored as the person's ${fmt(x.linkedPerSec)}/s (the rest counted only: no consent to analytics); rule decisions ${fmt(x.decisionsPerSec)}/s; ` +
    `backlog (events accepted, not yet processed) ${fmt(x.backlogStart)} at the start and ${fmt(x.backlogEnd)} at the end, ${x.jobsStart} and ${x.jobsEnd} jobs; ` +
    `the machine ${fmt(100 * x.cpu.machineBusy)} % busy over ${os.cpus().length} cores` +
    (x.skippedPaused + x.skippedInFlight > 0 ? `; requests not sent: ${fmt(x.skippedPaused)} paused on the backlog, ${fmt(x.skippedInFlight)} at ${MAX_IN_FLIGHT} in flight` : '');
  const seedSteps = main.seed.steps.map((s) => `${s.step} ${s.seconds.toFixed(1)} s`).join('; ');
  const lines = [
    windowLine(`throughput window (${fmt(w.seconds)} s after ${WARMUP_SECONDS} s of warm-up)`, w),
    ...(lat ? [windowLine(`latency window (${fmt(lat.seconds)} s, open loop)`, lat)] : []),
    ...(main.latency ? [`- latency at the target's half rate: ${target.line}`] : []),
    ...(half && main.latencyHalf ? [windowLine(`latency window at half the sustained rate (${fmt(main.latencyHalf.window.seconds)} s, open loop)`, main.latencyHalf.window), `- latency at half the sustained rate: ${half.line}`] : []),
    `- drain after the throughput window: ${fmt(main.drain.events)} events in ${main.drain.seconds.toFixed(1)} s${main.drain.complete ? '' : ' (not complete within its budget)'}`,
    `- worker RSS (${main.rss.worker.samples} samples every ${SAMPLE_MS / 1_000} s over the window): first ${fmt(main.rss.worker.first)} MB, last ${fmt(main.rss.worker.last)} MB, max ${fmt(main.rss.worker.max)} MB, slope of each minute's lowest sample ${fmt(main.rss.worker.floorSlopePerMin, 2)} MB/min (flat: under ${FLAT_MB_PER_MIN}), slope fitted to every sample ${fmt(main.rss.worker.slopePerMin, 2)} MB/min; API: max ${fmt(main.rss.api.max)} MB, slope ${fmt(main.rss.api.slopePerMin, 2)} MB/min`,
    `- Redis after ${fmt(main.redis.processed)} events processed and the backlog drained: keys under the run's prefix ${fmt(redisKeys / 1e6, 2)} MB more ` +
      `(${Object.entries(main.redis.byQueue).map(([q, b]) => `${q} ${fmt(b / 1e6, 2)} MB`).join(', ')}; ${fmt(main.redis.delayedWakes)} delayed journey wake-ups, due in an hour, of the abandoned_cart enrolments), ` +
      `INFO used_memory ${fmt(redisUsed / 1e6, 2)} MB more (the server is shared with other work); per 1,000,000 events: ${fmt(perMillion(redisKeys), 1)} MB by the keys, ${fmt(perMillion(redisUsed), 1)} MB by used_memory; 1 MB = 10^6 bytes`,
    ...(small && smallW && large
      ? [
          `- cost growth: the same load (${fmt(OFFERED)}/s offered, the same warm-up) against ${fmt(small.profiles)} people for ${fmt(smallW.seconds)} s: ${fmt(smallW.storedPerSec)} events/s processed, ` +
            `CPU s per 1,000 events ${ms2(perEvent(smallW).stores)} (API, worker, PostgreSQL, Redis) and ${ms2(perEvent(smallW).engine)} (API + worker); ` +
            `with ${fmt(main.profiles)} people over the first ${fmt(large.seconds)} s: ${fmt(large.storedPerSec)} events/s, ${ms2(perEvent(large).stores)} and ${ms2(perEvent(large).engine)}; ratio of API + worker alone ${fmt(growthEngine, 2)}×. ` +
            `With fewer people each gets more events, so their recent-event reads are longer in the small database`,
        ]
      : []),
    `- seeding ${fmt(main.profiles)} people: ${main.seed.seconds.toFixed(1)} s (${seedSteps}); rows: ${Object.entries(main.seed.rows).map(([t, n]) => `${t} ${fmt(n)}`).join(', ')}`,
    `- after the run: ${Object.entries(main.rows).map(([t, n]) => `${t} ${fmt(n)}`).join(', ')}; ${fmt(main.visitors)} new anonymous visitors introduced by the load`,
  ].join('\n');
  say(`\n${table}\n\n${cpuTable}\n\n${lines}`);
  if (main.profile) say(`\n${main.profile}`);
  writeResults(suiteResults(main, small, { p50, p99, growthCpu, growthRate, redisWorstMb, lost, cost, half }, v));
  if (!writeDocs) {
    say(`\n${profiling ? '--profile' : '--no-docs'}: docs/benchmarks.md left unchanged`);
    return;
  }
  const section = [
    '<!-- bench:pipeline:start -->',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, \`npm run bench:pipeline${quick ? ' -- --quick' : ''}\`` +
      `${process.env.BENCH_PIPELINE_PROFILES || process.env.BENCH_PIPELINE_SECONDS ? ` with BENCH_PIPELINE_PROFILES=${PROFILES} BENCH_PIPELINE_SECONDS=${SECONDS}` : ''}` +
      ` (${fmt((performance.now() - scriptStarted) / 60_000, 1)} min). ` +
      `Processes: 1 \`consentflow api\` and ${WORKERS === 1 ? '1 `consentflow worker --queues events,journeys`' : `${WORKERS} workers (\`--queues events,journeys\` and ${WORKERS - 1} \`--queues events\`)`}, LOG_LEVEL=info; ` +
      `PostgreSQL ${main.versions.postgres} and Redis ${main.versions.redis} (as installed, shared with other work on the machine) and the load generator (this script) share the ${os.cpus().length} cores. ` +
      `The example rules (rules/ as shipped). The load: batches of ${BATCH_SIZE} events posted to /v1/batch (90 % from known people picked uniformly, 10 % from new anonymous visitors; pages, product views, article reads, cart and order events, identifies), ` +
      `offered at a fixed rate and paused while more than ${BACKLOG_CAP_SECONDS} s of it waits in the pipeline; "processed" counts app.event_receipts rows.` +
      (fullSize ? '' : ' A reduced or quick run: targets that need the full size are not judged.'),
    '',
    table,
    '',
    cpuTable,
    '',
    lines,
    '<!-- bench:pipeline:end -->',
  ].join('\n');
  writeDocsSection('bench:pipeline', section, '## End to end (`npm run bench:pipeline`)');
}

function suiteResults(
  main: RunOutcome,
  small: RunOutcome | undefined,
  f: { p50: number; p99: number; growthCpu: number; growthRate: number; redisWorstMb: number; lost: number; cost: ReturnType<typeof perEvent>; half: LatencyStats | undefined },
  v: Verdicts,
): ScenarioResults[] {
  const seconds = (performance.now() - scriptStarted) / 1_000;
  const reduced = quick ? undefined : fullSize ? undefined : `reduced run (${fmt(PROFILES)} people, ${SECONDS} s): not judged`;
  const limit = 'see docs/benchmarks.md, "End to end"';
  const figure = (x: Figure): Figure => x;
  return [
    {
      scenario: 'end to end',
      quick,
      seconds,
      figures: [
        figure({
          name: `events/s processed end to end (${fmt(main.profiles)} people, ${fmt(main.window.seconds)} s)`,
          value: main.window.storedPerSec,
          unit: 'events/s',
          target: '≥ 10,000 events/s sustained for 5 minutes',
          met: v.throughput,
          ...(v.throughput === false ? { note: limit } : reduced ? { note: reduced } : {}),
        }),
        figure({ name: 'events/s accepted by the API', value: main.window.acceptedPerSec, unit: 'events/s', met: null }),
        figure({ name: 'CPU s per 1,000 events, API + worker', value: f.cost.engine, unit: 's', met: null }),
        figure({ name: 'CPU s per 1,000 events, PostgreSQL backends of the bench database', value: f.cost.postgres, unit: 's', met: null }),
        figure({ name: 'CPU s per 1,000 events, Redis', value: f.cost.redis, unit: 's', met: null }),
        figure({ name: 'CPU s per 1,000 events, the whole machine', value: f.cost.machine, unit: 's', met: null }),
      ],
    },
    {
      scenario: 'event → decision latency',
      quick,
      seconds,
      figures: [
        figure({ name: `event → decision committed p50 at ${fmt(LATENCY_RATE)} events/s`, value: f.p50, unit: 'ms', target: `≤ ${TARGET_P50_MS} ms`, met: v.p50, ...(f.lost ? { note: `${f.lost} probes lost` } : {}) }),
        figure({ name: `event → decision committed p99 at ${fmt(LATENCY_RATE)} events/s`, value: f.p99, unit: 'ms', target: `≤ ${TARGET_P99_MS} ms`, met: v.p99 }),
        ...(f.half && main.latencyHalf
          ? [
              figure({ name: `event → decision committed p50 at ${fmt(main.latencyHalf.rate)} events/s (half the sustained rate)`, value: f.half.p50, unit: 'ms', met: null }),
              figure({ name: `event → decision committed p99 at ${fmt(main.latencyHalf.rate)} events/s (half the sustained rate)`, value: f.half.p99, unit: 'ms', met: null }),
            ]
          : []),
      ],
    },
    ...(small
      ? [
          {
            scenario: 'cost growth',
            quick,
            seconds,
            figures: [
              figure({ name: `CPU per event, ${fmt(main.profiles)} ÷ ${fmt(small.profiles)} people`, value: f.growthCpu, unit: 'x', target: `≤ ${TARGET_GROWTH}×`, met: v.growthCpu }),
              figure({ name: `events/s, ${fmt(small.profiles)} ÷ ${fmt(main.profiles)} people`, value: f.growthRate, unit: 'x', target: `≤ ${TARGET_GROWTH}×`, met: v.growthRate }),
            ],
          },
        ]
      : []),
    {
      scenario: 'memory',
      quick,
      seconds,
      figures: [
        figure({ name: 'worker RSS max over the run', value: main.rss.worker.max, unit: 'MB', target: `≤ ${TARGET_RSS_MB} MB, flat`, met: v.rss, note: `floor slope ${fmt(main.rss.worker.floorSlopePerMin, 2)} MB/min (each minute's lowest sample); fitted to every sample ${fmt(main.rss.worker.slopePerMin, 2)} MB/min` }),
        figure({ name: 'Redis growth per 1,000,000 events processed', value: f.redisWorstMb, unit: 'MB', target: `≤ ${TARGET_REDIS_MB} MB`, met: v.redis, note: 'the larger of MEMORY USAGE of the keys and INFO used_memory' }),
      ],
    },
  ];
}

async function main(): Promise<void> {
  say(
    `bench:pipeline: ${fmt(PROFILES)} people, ${SECONDS} s at ${fmt(OFFERED)} events/s offered; latency at ${fmt(LATENCY_RATE)}/s for ${LATENCY_SECONDS} s; ` +
      `growth pair against ${fmt(GROWTH_PROFILES)} people over ${GROWTH_SECONDS} s; ${WORKERS} worker process(es)${profiling ? '; the worker under --cpu-prof' : ''}`,
  );
  const growthSeconds = GROWTH_SECONDS > 0 ? GROWTH_SECONDS : undefined;
  const large = await runPipeline('main', PROFILES, SECONDS, { latency: true, ...(growthSeconds ? { growthSeconds } : {}) });
  const small = growthSeconds && !profiling ? await runPipeline('cost growth', GROWTH_PROFILES, growthSeconds, { latency: false, growthSeconds }) : undefined;
  report(large, small);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:pipeline failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

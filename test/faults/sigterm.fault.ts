import { Redis } from 'ioredis';
import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { eventIntegrity, waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { chunks, newLedger, plainEvents, postAll } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { faultRules } from './harness/rules';
import { waitFor } from '../support/wait';

const EVENTS = 20_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;

/**
 * Scenario 9 (issue 10): SIGTERM to an events worker in the middle of its batches. It stops taking
 * jobs, finishes the ones it runs within SHUTDOWN_TIMEOUT_MS and exits 0, leaving no job active
 * (none to stall); a second SIGTERM while draining exits at once (130), and the jobs it abandons
 * stall and are run again by another worker, each event still stored once.
 */
describe('fault 9: SIGTERM during a batch', () => {
  let cluster: FaultCluster;
  let api: EngineProcess;
  let redis: Redis;
  beforeAll(async () => {
    cluster = await startFaultCluster({ RULES_DIR: faultRules({ linkByDefault: true }), SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
    api = await cluster.api();
    redis = new Redis(cluster.redisUrl);
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await cluster?.close();
  });

  const activeJobs = () => redis.llen(`${cluster.prefix}:events:active`);
  /** Entries of the queue's event stream with this event name (BullMQ emits `stalled` there). */
  const streamEvents = async (name: string) =>
    (await redis.xrange(`${cluster.prefix}:events:events`, '-', '+')).filter(([, fields]) => fields[0] === 'event' && fields[1] === name).length;
  const stored = () => cluster.number('select count(*) from app.event_receipts');
  /**
   * Holds a lock that makes every batch wait at its first insert, so the signal surely comes while
   * a batch is mid-transaction (a batch of 500 takes well under a second otherwise). Returns release.
   */
  const holdBatches = async (): Promise<() => Promise<void>> => {
    const client = await cluster.pool.connect();
    await client.query('begin');
    await client.query('lock table app.event_receipts in share row exclusive mode');
    return async () => {
      await client.query('commit');
      client.release();
    };
  };
  const batchesWaiting = () =>
    cluster.number("select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");

  it('drains the batches in flight within the deadline, leaving nothing to stall', async () => {
    const started = Date.now();
    const worker = await cluster.worker(['events'], 'events-1');
    const events = plainEvents('t1', EVENTS, 2_000);
    const ledger = await postAll(api.url as string, cluster.writeKey, chunks(events, 500), 4, newLedger());
    expect(ledger.accepted.size).toBe(EVENTS);
    // Mid-batch: some stored, then the next batches held inside their transaction.
    await waitFor(async () => (await stored()) > 0, { timeoutMs: 60_000, what: 'the first batches stored' });
    const release = await holdBatches();
    await waitFor(async () => (await batchesWaiting()) > 0 && (await activeJobs()) > 0, { timeoutMs: 60_000, what: 'a batch mid-transaction' });
    const before = { stored: await stored(), active: await activeJobs() };
    const signalledAt = Date.now();
    worker.signal('SIGTERM');
    await waitFor(() => worker.lines.some((l) => l.includes('draining')), { timeoutMs: 10_000, what: 'the signal taken' });
    // The batch under way goes on (and commits) once the lock is gone, well within the deadline.
    await release();
    const exit = await worker.exited;
    const drainMs = Date.now() - signalledAt;
    const activeAfter = await activeJobs();
    const storedAtExit = await stored();
    const clean = worker.lines.some((l) => l.includes('"msg":"stopped"') && l.includes('"clean":true'));

    // Another worker finishes the backlog; nothing stalls, nothing is stored twice.
    const next = await cluster.worker(['events'], 'events-2');
    await waitOrExplain(cluster, async () => (await stored()) === EVENTS && (await cluster.pending('events')) === 0, 'the backlog stored by the next worker', 120_000);
    const stalled = await streamEvents('stalled');
    const integrity = await eventIntegrity(cluster, ledger.accepted);
    recordFigure('9a-sigterm', {
      scenario: '9 SIGTERM during a batch',
      load: `${EVENTS.toLocaleString('en')} events queued (jobs of 500), 1 events worker busy`,
      fault: `SIGTERM mid-batch (SHUTDOWN_TIMEOUT_MS ${SHUTDOWN_TIMEOUT_MS})`,
      lost: integrity.lost.length,
      duplicated: integrity.duplicated,
      recoveryMs: drainMs,
      counts: {
        exitCode: String(exit.code),
        drainMs,
        activeJobsAtSignal: before.active,
        storedAtSignal: before.stored,
        storedAtExit,
        activeJobsAfterExit: activeAfter,
        stalledJobs: stalled,
        clean,
        stored: integrity.stored,
      },
      durationMs: Date.now() - started,
    });
    expect({ code: exit.code, clean, activeAfter, stalled }).toEqual({ code: 0, clean: true, activeAfter: 0, stalled: 0 });
    expect(drainMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    // The batches under way at the signal were finished, not abandoned.
    expect(storedAtExit).toBeGreaterThan(before.stored);
    expect({ lost: integrity.lost.length, duplicated: integrity.duplicated }).toEqual({ lost: 0, duplicated: 0 });
    next.signal('SIGTERM');
    expect((await next.exited).code).toBe(0);
    expect(unexpectedExits()).toEqual([]);
  });

  it('exits at once on a second SIGTERM; the batches it abandons run again elsewhere, stored once', async () => {
    const started = Date.now();
    const base = await stored();
    const events = plainEvents('t2', EVENTS, 2_000);
    const worker = await cluster.worker(['events'], 'events-3');
    const ledger = await postAll(api.url as string, cluster.writeKey, chunks(events, 500), 4, newLedger());
    await waitFor(async () => (await stored()) > base, { timeoutMs: 60_000, what: 'the first batches stored' });
    const release = await holdBatches();
    await waitFor(async () => (await batchesWaiting()) > 0 && (await activeJobs()) > 0, { timeoutMs: 60_000, what: 'a batch mid-transaction' });
    worker.signal('SIGTERM');
    await waitFor(() => worker.lines.some((l) => l.includes('draining')), { timeoutMs: 10_000, what: 'the first signal taken' });
    const activeAtSecond = await activeJobs();
    const secondAt = Date.now();
    worker.signal('SIGTERM');
    const exit = await worker.exited;
    const exitMs = Date.now() - secondAt;
    // Its connections went with it: PostgreSQL rolls the abandoned batches back.
    await release();

    // The abandoned jobs keep their lock until it expires (30 s), then stall and run again.
    const rescuer = await cluster.worker(['events'], 'events-4');
    await waitOrExplain(cluster, async () => (await stored()) === base + EVENTS && (await cluster.pending('events')) === 0, 'every event stored after the forced exit', 150_000);
    const recoveryMs = Date.now() - secondAt;
    const integrity = await eventIntegrity(cluster, ledger.accepted);
    recordFigure('9b-sigterm-twice', {
      scenario: '9 second SIGTERM while draining',
      load: `${EVENTS.toLocaleString('en')} events queued (jobs of 500), 1 events worker busy`,
      fault: 'SIGTERM, then SIGTERM again while draining: exit at once; abandoned jobs stall and run elsewhere',
      lost: integrity.lost.length,
      duplicated: integrity.duplicated,
      recoveryMs,
      counts: { exitCode: String(exit.code), exitAfterSecondSignalMs: exitMs, activeJobsAtSecondSignal: activeAtSecond, stalledJobs: await streamEvents('stalled'), stored: integrity.stored },
      durationMs: Date.now() - started,
    });
    expect(exit.code).toBe(130);
    expect(exitMs).toBeLessThan(2_000);
    expect({ lost: integrity.lost.length, duplicated: integrity.duplicated }).toEqual({ lost: 0, duplicated: 0 });
    rescuer.signal('SIGTERM');
    expect((await rescuer.exited).code).toBe(0);
    expect(unexpectedExits()).toEqual([]);
  });
});

import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { eventIntegrity, unprocessed, waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { type Event, postBatch, type PostLedger, newLedger, plainEvents } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { type PersistentRedis, startPersistentRedis } from './harness/redis';
import { faultRules } from './harness/rules';
import { waitFor } from '../support/wait';

const BATCH = 20;
/** One request of BATCH events every INTERVAL_MS per sender, SENDERS senders: about 400 events/s. */
const INTERVAL_MS = 100;
const SENDERS = 2;
const DOWN_MS = 5_000;

interface Answer {
  readonly sentAt: number;
  readonly answeredAt: number;
  readonly status: number;
  readonly ids: readonly string[];
}

/**
 * Scenario 3 (issue 10): Redis (its own redis-server, AOF) killed and restarted while events come in
 * at a steady rate. While it is down the API answers 503, never a false 2xx; every event that got a
 * 2xx is stored; the API and the workers reconnect by themselves, within 30 s.
 */
describe('fault 3: Redis restarted during ingest at steady load', () => {
  let redis: PersistentRedis;
  let cluster: FaultCluster;
  let api: EngineProcess;
  beforeAll(async () => {
    redis = await startPersistentRedis('always');
    cluster = await startFaultCluster({ RULES_DIR: faultRules({ linkByDefault: true }), REDIS_URL: redis.url, EMBEDDED_REDIS: 'off' });
    [api] = await Promise.all([cluster.api(), cluster.worker(['events'], 'events-1'), cluster.worker(['events'], 'events-2')]);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await redis?.stop();
  });

  it('answers 503 while Redis is down, stores every event it answered 2xx, and resumes without a restart', async () => {
    const started = Date.now();
    const url = api.url as string;
    const answers: Answer[] = [];
    const ledger: PostLedger = newLedger();
    let sending = true;
    let n = 0;
    const senders = Array.from({ length: SENDERS }, async (_, s) => {
      for (let tick = Date.now(); sending; ) {
        const batch: Event[] = plainEvents(`redis-s${s}-r${n++}`, BATCH, 50);
        const sentAt = Date.now();
        const status = await postBatch(url, cluster.writeKey, batch, ledger, 5_000);
        answers.push({ sentAt, answeredAt: Date.now(), status, ids: batch.map((e) => e.messageId) });
        tick += INTERVAL_MS;
        if (tick > Date.now()) await new Promise((resolve) => setTimeout(resolve, tick - Date.now()));
      }
    });
    const accepted = () => answers.filter((a) => a.status === 200).length;

    // Steady state first, then the crash.
    await waitFor(() => accepted() >= 20, { timeoutMs: 30_000, what: 'steady load accepted' });
    await waitFor(async () => (await cluster.number('select count(*) from app.event_receipts')) > 0, { timeoutMs: 30_000, what: 'events stored before the fault' });
    const downAt = Date.now();
    await redis.stop('SIGKILL');
    await waitFor(() => Date.now() - downAt >= DOWN_MS, { timeoutMs: DOWN_MS + 1_000, what: 'the outage' });
    await redis.start();
    const upAt = Date.now();

    // The API takes events again, and the workers store one sent after the restart.
    const apiBack = await waitFor(() => answers.find((a) => a.sentAt >= upAt && a.status === 200), { timeoutMs: 30_000, what: 'a 2xx after the restart' });
    const firstAfter = apiBack.ids[0] as string;
    await waitOrExplain(cluster, async () => (await unprocessed(cluster, [firstAfter])).length === 0, 'an event accepted after the restart stored', 30_000);
    const workersBackMs = Date.now() - upAt;
    sending = false;
    await Promise.all(senders);

    // Every 2xx stored: jobs in flight when Redis died stall and run again within 60 s.
    await waitOrExplain(cluster, async () => (await unprocessed(cluster, ledger.accepted)).length === 0, 'every 2xx event stored', 120_000);
    const recoveryMs = Date.now() - upAt;
    const integrity = await eventIntegrity(cluster, ledger.accepted);
    const during = answers.filter((a) => a.sentAt >= downAt + 100 && a.answeredAt <= upAt);
    const beforeFault = answers.filter((a) => a.answeredAt < downAt);
    const firstSent = answers[0]?.sentAt ?? downAt;
    const ratePerSecond = Math.round((beforeFault.filter((a) => a.status === 200).length * BATCH * 1_000) / Math.max(1, downAt - firstSent));
    const statusesDuring = [...new Set(during.map((a) => a.status))];
    const counts = {
      acceptedPerSecondBeforeFault: ratePerSecond,
      requests: answers.length,
      eventsSent: answers.length * BATCH,
      accepted: ledger.accepted.size,
      stored: integrity.stored,
      requestsWhileDown: during.length,
      statusesWhileDown: statusesDuring.join(' '),
      falseAcceptsWhileDown: during.filter((a) => a.status >= 200 && a.status < 300).length,
      serverErrors: ledger.serverErrors.length,
      apiBackAfterMs: apiBack.answeredAt - upAt,
      workersBackAfterMs: workersBackMs,
      allStoredAfterMs: recoveryMs,
      statuses: JSON.stringify(Object.fromEntries(ledger.statuses)),
    };
    recordFigure('3-redis-restart', {
      scenario: '3 Redis restarted',
      load: `steady POST /v1/batch of ${BATCH} (${SENDERS} senders, one request each per ${INTERVAL_MS} ms: ${ratePerSecond} events/s accepted before the fault), 2 events workers`,
      fault: `redis-server SIGKILL, down ${DOWN_MS / 1_000} s, restarted (AOF, appendfsync always)`,
      lost: integrity.lost.length,
      duplicated: integrity.duplicated,
      recoveryMs: Math.max(counts.apiBackAfterMs, workersBackMs),
      counts,
      durationMs: Date.now() - started,
    });
    expect(during.length).toBeGreaterThan(0);
    expect(statusesDuring).toEqual([503]);
    expect({ lost: integrity.lost.length, duplicated: integrity.duplicated, serverErrors: ledger.serverErrors }).toEqual({ lost: 0, duplicated: 0, serverErrors: [] });
    expect(counts.apiBackAfterMs).toBeLessThan(30_000);
    expect(workersBackMs).toBeLessThan(30_000);
    expect(unexpectedExits()).toEqual([]);
  });
});

import type { Redis } from 'ioredis';
import type { Finding } from '../../engine/privacy/erasure/verify';
import { deepScanRedis } from '../../engine/privacy/erasure/deep-scan';
import { queueSealingKey } from '../../engine/queues/sealing';
import { loadConfig } from '../../engine/config';
import { testEnv } from '../support/config';
import { runCli } from '../support/cli';
import { waitFor } from '../support/wait';
import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { unprocessed, waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { type Event, newLedger, postAll, postBatch, subscriberEvents } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { keySlot, type LocalRedisCluster, startRedisCluster } from './harness/redis-cluster';
import { faultRules } from './harness/rules';
import { type SmtpSink, startSmtpSink } from './harness/smtp-sink';

interface ErasureStatus {
  state: string;
  signatureValid: boolean | null;
  receipt: { verification: { clean: boolean; findings: unknown[]; deep?: { clean: boolean; findings: unknown[] } }; profilesErased: number } | null;
}

const ALL_QUEUES = ['events', 'journeys', 'broadcasts', 'email', 'erasure', 'maintenance'] as const;

/**
 * Redis Cluster (issue 10): the engine on a local 3-master Redis Cluster (REDIS_CLUSTER_NODES), its
 * queue prefix hash-tagged (`{cff-…}`) so every key of every queue lives in one slot, as BullMQ's Lua
 * scripts need. The core flow, through real processes: an identify, a consent and a track in; the
 * welcome campaign enrols the person and its email reaches the SMTP sink; an erasure with the deep
 * scan (every master SCANned) completes with a signed, clean receipt; `subject verify-erasure --deep`
 * agrees. Also: every engine key sits on the one master that owns the prefix's slot, the deep scan
 * finds a planted key there whichever node the cluster client would have sent a SCAN to, and a
 * prefix without a hash tag is refused at start.
 */
describe('Redis Cluster: the core flow on a 3-node cluster', () => {
  let redis: LocalRedisCluster | undefined;
  let cluster: FaultCluster | undefined;
  let smtp: SmtpSink | undefined;
  let api: EngineProcess;
  let officerKey: string;
  let clusterStartMs = 0;
  beforeAll(async () => {
    const t0 = Date.now();
    redis = await startRedisCluster(3, 7101);
    clusterStartMs = Date.now() - t0;
    smtp = await startSmtpSink();
    cluster = await startFaultCluster({ RULES_DIR: faultRules(), SMTP_URL: smtp.url, REDIS_URL: '', REDIS_CLUSTER_NODES: redis.nodesEnv });
    const created = runCli(['keys', 'create', '--role', 'privacy_officer', '--name', 'faults', '--json'], cluster.env);
    if (created.status !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    officerKey = (JSON.parse(created.stdout.trim()) as { key: string }).key;
    [api] = await Promise.all([cluster.api(), cluster.worker(ALL_QUEUES, 'worker')]);
  }, 180_000);
  afterAll(async () => {
    // The cluster's redis-server processes go whatever happened before.
    try {
      await cluster?.close();
      await smtp?.close();
    } finally {
      await redis?.stop();
    }
  });

  it('reads REDIS_CLUSTER_NODES as host:port or redis:// seeds, and names what is wrong', () => {
    const parse = (nodes: string, extra: Record<string, string> = {}) => loadConfig(testEnv({ REDIS_URL: '', REDIS_CLUSTER_NODES: nodes, QUEUE_PREFIX: '{cf}', ...extra })).redis;
    expect(parse('10.0.0.1:7000, 10.0.0.2:7001').cluster).toEqual({
      nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }],
      username: undefined,
      password: undefined,
      tls: false,
    });
    expect(parse('rediss://app:s%3Acret@cache-1.internal:6380,rediss://cache-2.internal:6380').cluster).toEqual({
      nodes: [{ host: 'cache-1.internal', port: 6380 }, { host: 'cache-2.internal', port: 6380 }],
      username: 'app',
      password: 's:cret',
      tls: true,
    });
    // A cluster is never replaced by an embedded redis-server.
    expect(parse('127.0.0.1:7000').urlExplicit).toBe(true);
    expect(() => parse('nohost')).toThrow(/REDIS_CLUSTER_NODES: expected a comma-separated list of host:port/);
    expect(() => parse('redis://a:1,rediss://b:2')).toThrow(/same scheme/);
    // The value (which may hold a password) is never echoed.
    expect(() => parse('redis://u:hunter2@:x')).toThrow(/^(?![\s\S]*hunter2)/);
    expect(() => parse('127.0.0.1:7000', { QUEUE_PREFIX: '{}cf' })).toThrow(/has no hash tag/);
  });

  it('refuses a queue prefix without a hash tag', () => {
    const env = cluster?.env as Record<string, string | undefined>;
    const refused = runCli(['migrate'], { ...env, QUEUE_PREFIX: 'cf-no-tag' });
    expect(refused.status).toBe(78);
    expect(refused.stderr).toContain('QUEUE_PREFIX="cf-no-tag" has no hash tag');
    const both = runCli(['migrate'], { ...env, REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(both.status).toBe(78);
    expect(both.stderr).toContain('REDIS_URL and REDIS_CLUSTER_NODES are both set');
  });

  it('refuses to start while any master may evict, not only the one holding its keys', async () => {
    const c = cluster as FaultCluster;
    const r = redis as LocalRedisCluster;
    const owner = await r.ownerOf(keySlot(`${c.prefix}:events`));
    const other = r.ports.find((p) => p !== owner) as number;
    await r.node(other).call('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const refused = runCli(['api'], { ...c.env, LOG_LEVEL: 'error' }, 30_000);
      expect(refused.status).not.toBe(0);
      expect(refused.status).not.toBeNull();
      expect(`${refused.stdout}${refused.stderr}`).toContain(`Redis Cluster node 127.0.0.1:${other} has maxmemory-policy 'allkeys-lru'`);
    } finally {
      await r.node(other).call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('ingests, enrols, sends, erases and verifies on the cluster', async () => {
    const c = cluster as FaultCluster;
    const r = redis as LocalRedisCluster;
    const sink = smtp as SmtpSink;
    const started = Date.now();
    const url = api.url as string;
    const userId = 'rc-u0';
    const address = `${userId}@example.com`;

    // In: consent (with the address), identify, page, track.
    const events = subscriberEvents('rc', 1, 4);
    const ledger = newLedger();
    // Retried on 503 as an SDK does: the shared PostgreSQL may be restarted by another scenario.
    await postAll(url, c.writeKey, [events], 1, ledger);
    expect(ledger.accepted.size).toBe(events.length);
    await waitOrExplain(
      c,
      async () => sink.messages.find((m) => m.campaign === 'fault_welcome' && m.to.includes(address)),
      'the welcome email at the SMTP sink',
      60_000,
    );
    const ingestToEmailMs = Date.now() - started;
    const stored = await c.number('select count(*) from app.events where source_id = $1', [c.sourceId]);
    const enrolments = await c.number("select count(*) from app.enrolments where campaign_id = 'fault_welcome'");
    const sent = await c.number("select count(*) from app.scheduled_sends where state = 'sent'");

    // Where the engine's keys are: all in the prefix's slot, on the one master that owns it.
    const slot = keySlot(`${c.prefix}:events:id`);
    const keysPerNode: Record<string, number> = {};
    const slotsSeen = new Set<number>();
    for (const port of r.ports) {
      const node = r.node(port);
      let n = 0;
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${c.prefix}*`, 'COUNT', 1000);
        cursor = next;
        n += keys.length;
        for (const k of keys) slotsSeen.add(keySlot(k));
      } while (cursor !== '0');
      keysPerNode[String(port)] = n;
    }
    const nodesWithKeys = Object.values(keysPerNode).filter((n) => n > 0).length;
    const engineKeys = Object.values(keysPerNode).reduce((a, b) => a + b, 0);

    // The deep scan visits every master: a key planted in the prefix's slot is found, and every key
    // under the prefix is read, whichever node owns the slot.
    const client = r.client();
    const planted = `${c.prefix}:cluster-probe`;
    await client.set(planted, 'needle-cluster-probe-7c1f');
    const findings: Finding[] = [];
    const sealingKey = queueSealingKey(Buffer.from(c.env.MASTER_KEY as string, 'base64'));
    // The engine's connection type (engine/redis/connection.ts createRedis): a Cluster typed as a Redis.
    const scanned = await deepScanRedis(client as unknown as Redis, c.prefix, sealingKey, ['needle-cluster-probe-7c1f'], findings);
    await client.del(planted);
    const plantedFound = findings.reduce((n, f) => n + f.count, 0);

    // Erasure, with the deep scan, through the admin API.
    const admin = { authorization: `Bearer ${officerKey}`, 'content-type': 'application/json' };
    const erasureStarted = Date.now();
    const res = await fetch(`${url}/admin/v1/subjects/erase`, { method: 'POST', headers: admin, body: JSON.stringify({ userId, deep: true }) });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const status = await waitOrExplain(
      c,
      async () => {
        const s = (await (await fetch(`${url}/admin/v1/erasures/${id}`, { headers: admin })).json()) as ErasureStatus;
        return s.state === 'completed' ? s : undefined;
      },
      'the erasure to complete',
      120_000,
    );
    const erasureMs = Date.now() - erasureStarted;
    const verified = runCli(['subject', 'verify-erasure', id, '--deep', '--user-id', userId, '--json'], c.env);
    const verify = JSON.parse(verified.stdout.trim() || '{}') as { clean?: boolean };
    const profilesLeft = await c.number('select count(*) from app.profiles');
    const failed = Object.fromEntries(await Promise.all(ALL_QUEUES.map(async (q) => [q, (await c.jobCounts(q)).failed] as const)));

    const counts = {
      nodes: r.ports.length,
      clusterStartMs,
      prefix: c.prefix,
      slot,
      keysPerNode: JSON.stringify(keysPerNode),
      nodesWithKeys,
      slotsUsed: slotsSeen.size,
      engineKeys,
      eventsAccepted: ledger.accepted.size,
      eventsStored: stored,
      enrolments,
      sendsSent: sent,
      emails: sink.messages.length,
      ingestToEmailMs,
      deepScanKeys: scanned,
      plantedFound,
      erasureState: status.state,
      receiptSignatureValid: status.signatureValid === true,
      receiptClean: status.receipt?.verification.clean === true,
      receiptDeepClean: status.receipt?.verification.deep?.clean === true,
      erasureMs,
      verifyExit: verified.status ?? -1,
      verifyClean: verify.clean === true,
      profilesLeft,
      failedJobs: JSON.stringify(failed),
    };
    recordFigure('12-redis-cluster', {
      scenario: '12 Redis Cluster (3 masters)',
      load: 'the core flow: consent + identify + page + track in, a welcome campaign enrols and sends, an erasure with the deep scan, `verify-erasure --deep`',
      fault: 'none: the engine on a 3-master Redis Cluster (REDIS_CLUSTER_NODES), queue prefix hash-tagged',
      lost: events.length - stored + (1 - sink.messages.length),
      duplicated: Math.max(0, sink.messages.length - 1) + Math.max(0, enrolments - 1),
      recoveryMs: null,
      counts,
      durationMs: Date.now() - started,
    });
    expect(counts).toMatchObject({
      nodesWithKeys: 1,
      slotsUsed: 1,
      eventsStored: events.length,
      enrolments: 1,
      sendsSent: 1,
      emails: 1,
      plantedFound: 1,
      erasureState: 'completed',
      receiptSignatureValid: true,
      receiptClean: true,
      receiptDeepClean: true,
      verifyExit: 0,
      verifyClean: true,
      profilesLeft: 0,
    });
    expect(slotsSeen.has(slot)).toBe(true);
    expect(scanned).toBeGreaterThan(0);
    expect(Object.values(failed).every((n) => n === 0)).toBe(true);
    expect(unexpectedExits()).toEqual([]);
  });
  it('answers 503, never a false 2xx, while the master of its queues is down, and recovers once it is back', async () => {
    const c = cluster as FaultCluster;
    const r = redis as LocalRedisCluster;
    const url = api.url as string;
    let n = 0;
    const event = (): Event => ({ type: 'page', name: 'Outage', messageId: `rc-outage-${n++}`, userId: 'rc-other', timestamp: new Date().toISOString(), properties: {} });
    // Everything up first (the shared PostgreSQL may be restarted by another scenario meanwhile).
    await postAll(url, c.writeKey, [[event()]], 1, newLedger());
    const owner = await r.ownerOf(keySlot(`${c.prefix}:events`));
    await r.kill(owner);
    const killedAt = Date.now();
    // For 5 s (a request at a time): each answer must be a 503 (Redis did not take the events), never
    // a 2xx. PostgreSQL is watched too: a 503 then may be its outage rather than Redis's.
    const during = newLedger();
    let postgresDown = 0;
    const readyStatuses = new Map<number, number>();
    while (Date.now() - killedAt < 5_000) {
      await postBatch(url, c.writeKey, [event()], during);
      if (!(await c.pool.query('select 1').then(() => true, () => false))) postgresDown++;
      // Readiness must say so too, so a load balancer takes the API out while its queues' master is gone.
      const ready = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) }).then((res) => res.status, () => 0);
      readyStatuses.set(ready, (readyStatuses.get(ready) ?? 0) + 1);
    }
    const downFor = Date.now() - killedAt;
    await r.start(owner);
    const restartedAt = Date.now();
    const after = newLedger();
    await waitFor(async () => (await postBatch(url, c.writeKey, [event()], after)) === 200, { timeoutMs: 60_000, what: 'the API to accept events again' });
    const apiRecoveredMs = Date.now() - restartedAt;
    await waitOrExplain(c, async () => (await unprocessed(c, after.accepted)).length === 0, 'an event accepted after the restart to be processed', 90_000);
    const workerRecoveredMs = Date.now() - restartedAt;
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, { timeoutMs: 30_000, what: '/readyz to answer 200 again' });
    const readyAgainMs = Date.now() - restartedAt;
    const statusesDuring = Object.fromEntries(during.statuses);
    recordFigure('12b-redis-cluster-master-restart', {
      scenario: '12 Redis Cluster: a master restarted',
      load: 'one `POST /v1/batch` of 1 event at a time, 1 API, 1 worker (every queue)',
      fault: `SIGKILL of the master serving the queue prefix's slot, down ${(downFor / 1_000).toFixed(1)} s (no replica: the slot has no server), started again (AOF, \`appendfsync always\`)`,
      lost: (await unprocessed(c, [...during.accepted, ...after.accepted])).length,
      duplicated: 0,
      recoveryMs: workerRecoveredMs,
      counts: {
        requestsWhileDown: [...during.statuses.values()].reduce((a, b) => a + b, 0),
        statusesWhileDown: JSON.stringify(statusesDuring),
        acceptedWhileDown: during.accepted.size,
        postgresChecksFailedWhileDown: postgresDown,
        readyzWhileDown: JSON.stringify(Object.fromEntries(readyStatuses)),
        apiRecoveredMs,
        workerRecoveredMs,
        readyAgainMs,
      },
      durationMs: Date.now() - killedAt,
    });
    expect(during.accepted.size).toBe(0);
    expect(Object.keys(statusesDuring)).toEqual(['503']);
    expect(during.serverErrors).toEqual([]);
    expect(Object.keys(Object.fromEntries(readyStatuses))).toEqual(['503']);
    expect(unexpectedExits()).toEqual([]);
  });
});

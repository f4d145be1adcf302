import pg from 'pg';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { runCli } from '../../support/cli';
import { testEnv } from '../../support/config';
import { createTestDatabase, type TestDatabase } from '../../support/database';
import { randomSuffix } from '../../support/env';
import { killAll, spawnEngine, type EngineProcess } from './processes';
import { removeClusterKeys } from './redis-cluster';

/**
 * One engine deployment for a fault scenario: its own PostgreSQL database and queue prefix (as every
 * integration test file has), one environment shared by every process (same keys, same rules), a
 * source and its write key, and a direct connection for counting what was stored.
 */
export interface JobCounts {
  readonly wait: number;
  readonly active: number;
  readonly delayed: number;
  readonly prioritized: number;
  readonly completed: number;
  readonly failed: number;
}

export interface FaultCluster {
  readonly env: Record<string, string | undefined>;
  readonly database: TestDatabase;
  readonly pool: pg.Pool;
  readonly writeKey: string;
  readonly sourceId: string;
  readonly prefix: string;
  readonly redisUrl: string;
  /** Starts `consentflow api` and waits until it listens. */
  api(name?: string, extraEnv?: Record<string, string>): Promise<EngineProcess>;
  /** Starts `consentflow worker --queues …` and waits until it takes jobs. */
  worker(queues: readonly string[], name?: string, extraEnv?: Record<string, string>): Promise<EngineProcess>;
  /** Starts `consentflow worker --queues …` without waiting (a supervisor's restart). */
  spawnWorker(queues: readonly string[], name?: string, extraEnv?: Record<string, string>): EngineProcess;
  /** A count (or any single number) from the scenario's database. */
  number(sql: string, params?: unknown[]): Promise<number>;
  rows<T extends pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<T[]>;
  /** A BullMQ queue handle under the scenario's prefix (closed by `close`). */
  queue(name: string): Queue;
  /** Job counts of one queue (BullMQ states). */
  jobCounts(name: string): Promise<JobCounts>;
  /** Jobs of one queue still to run or running: waiting, active, delayed, prioritized. */
  pending(name: string): Promise<number>;
  close(): Promise<void>;
}

/**
 * The scenarios' queue prefix: hash-tagged like the default, but not `{cft-…}`. The default suite's
 * global teardown (test/support/global-teardown.ts) unlinks every `{cft-*` key when a jest run ends,
 * so on a machine where someone else's `npm test` finishes mid-scenario, a `{cft-…}` scenario would
 * see its jobs vanish. Each cluster removes its own keys when it closes.
 */
export function faultQueuePrefix(): string {
  return `{cff-${randomSuffix()}}`;
}

/** Removes every key under `prefix` (a scenario's own queues). */
export async function removeQueueKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } catch {
    // A Redis that is gone (a scenario's own, stopped) has nothing left to remove.
  } finally {
    redis.disconnect();
  }
}

export async function startFaultCluster(overrides: Record<string, string | undefined> = {}): Promise<FaultCluster> {
  const database = await createTestDatabase();
  const env = testEnv({ DATABASE_URL: database.url, DATABASE_POOL_SIZE: '6', LOG_LEVEL: 'info', QUEUE_PREFIX: faultQueuePrefix(), ...overrides });
  const prefix = env.QUEUE_PREFIX as string;
  const redisUrl = env.REDIS_URL as string;
  // REDIS_CLUSTER_NODES (the Redis Cluster scenario): the scenario's own handles go to the cluster too.
  const clusterNodes = env.REDIS_CLUSTER_NODES || undefined;
  const connect = (): Redis | Cluster =>
    clusterNodes
      ? new Cluster(
          clusterNodes.split(',').map((hp) => ({ host: hp.slice(0, hp.lastIndexOf(':')), port: Number(hp.slice(hp.lastIndexOf(':') + 1)) })),
          { redisOptions: { maxRetriesPerRequest: null } },
        )
      : new Redis(redisUrl, { maxRetriesPerRequest: null });
  // The CLI applies the migrations and creates the source, as an operator would.
  const added = runCli(['sources', 'add', 'fault site', '--json'], env);
  if (added.status !== 0) {
    await database.drop();
    throw new Error(`sources add failed (${added.status}): ${added.stderr}`);
  }
  const source = JSON.parse(added.stdout.trim()) as { id: string; writeKey: string };
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => undefined);
  const queues = new Map<string, Queue>();
  let redis: Redis | Cluster | undefined;
  const cluster: FaultCluster = {
    env,
    database,
    pool,
    writeKey: source.writeKey,
    sourceId: source.id,
    prefix,
    redisUrl,
    async api(name = 'api', extraEnv = {}) {
      const p = spawnEngine(name, ['api'], { ...env, ...extraEnv });
      await p.ready();
      return p;
    },
    async worker(list, name, extraEnv) {
      const p = cluster.spawnWorker(list, name, extraEnv);
      await p.ready();
      return p;
    },
    spawnWorker(list, name = `worker[${list.join(',')}]`, extraEnv = {}) {
      return spawnEngine(name, ['worker', '--queues', list.join(',')], { ...env, ...extraEnv });
    },
    async number(text, params = []) {
      const { rows } = await pool.query<Record<string, string | number | null>>(text, params);
      const first = rows[0] ? Object.values(rows[0])[0] : undefined;
      return Number(first ?? 0);
    },
    async rows(text, params = []) {
      return (await pool.query(text, params)).rows;
    },
    queue(name) {
      let q = queues.get(name);
      if (!q) {
        redis ??= connect();
        redis.on('error', () => undefined);
        q = new Queue(name, { connection: redis, prefix });
        q.on('error', () => undefined);
        queues.set(name, q);
      }
      return q;
    },
    async jobCounts(name) {
      const c = await cluster.queue(name).getJobCounts('wait', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      return { wait: c.wait ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, prioritized: c.prioritized ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 };
    },
    async pending(name) {
      const c = await cluster.jobCounts(name);
      return c.wait + c.active + c.delayed + c.prioritized;
    },
    async close() {
      await killAll();
      await Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined)));
      if (clusterNodes) {
        const client = redis ?? connect();
        client.on('error', () => undefined);
        // Bounded: a cluster that is down (a scenario's fault) must not hang the teardown.
        await Promise.race([removeClusterKeys(client as Cluster, prefix).catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 15_000).unref())]);
        client.disconnect();
      } else {
        redis?.disconnect();
        await removeQueueKeys(redisUrl, prefix);
      }
      await pool.end();
      await database.drop();
    },
  };
  return cluster;
}

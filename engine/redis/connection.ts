import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { RedisClusterTarget } from '../config/redis-cluster-env';
import { AppError } from '../errors';
import type { Logger } from '../log/logger';

/**
 * Where Redis is: a URL, the unix socket of the engine's own embedded redis-server, or the seed
 * nodes of a Redis Cluster (REDIS_CLUSTER_NODES).
 */
export type RedisEndpoint = { readonly url: string } | { readonly socketPath: string } | { readonly cluster: RedisClusterTarget };

/**
 * The nodes a node-local command (SCAN, INFO) must visit to see everything: every master of a
 * cluster (each holds only its own slots' keys), or the one Redis.
 */
export function clusterMasters(client: Redis): Redis[] {
  const cluster: unknown = client;
  return cluster instanceof Cluster ? cluster.nodes('master') : [client];
}

/**
 * Readiness: PING for one Redis. A Redis Cluster answers PING from whichever node the command
 * reaches, so there every master that owns slots is pinged: the one holding the queues' slot may be
 * the one that is gone (a master whose connection the client dropped counts as unreachable).
 */
export async function pingEveryMaster(client: Redis): Promise<void> {
  const cluster: unknown = client;
  if (!(cluster instanceof Cluster)) {
    await client.ping();
    return;
  }
  const masters = new Set(cluster.slots.map((owners) => owners[0]).filter((key): key is string => typeof key === 'string'));
  if (masters.size === 0) {
    await client.ping();
    return;
  }
  const connected = new Map(cluster.nodes('all').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  await Promise.all(
    [...masters].map(async (key) => {
      const node = connected.get(key);
      if (!node) throw Object.assign(new Error(`Redis Cluster master ${key} is not connected`), { code: 'ECONNREFUSED' });
      await node.ping();
    }),
  );
}

/**
 * Connection roles, as BullMQ's "going to production" guide sets them:
 * - `worker`: blocking commands, must never give up (maxRetriesPerRequest: null) and reconnects forever;
 * - `producer`: the API's enqueue path fails fast (no offline queue, one retry) so a request gets a
 *   503 at once instead of hanging while Redis is down, and never a false 2xx.
 */
export type RedisRole = 'worker' | 'producer';

const retryStrategy = (times: number) => Math.min(times * 200, 2_000);

export function redisOptions(role: RedisRole): RedisOptions {
  return role === 'worker'
    ? { maxRetriesPerRequest: null, enableReadyCheck: true, retryStrategy }
    : // commandTimeout: a Redis that accepts the connection but stops answering must also end in a
      // 503, not a hung request.
      { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2_000, commandTimeout: 2_000, retryStrategy };
}

/**
 * A Redis Cluster client with the role's per-node options. The offline queue and the ready check are
 * cluster options too: a producer must fail fast while the cluster is unreachable, as with one Redis.
 */
function createCluster(target: RedisClusterTarget, role: RedisRole, name: string): Cluster {
  const perNode: RedisOptions = {
    ...redisOptions(role),
    connectionName: name,
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.tls ? { tls: {} } : {}),
  };
  const options: ClusterOptions = {
    redisOptions: perNode,
    lazyConnect: true,
    enableReadyCheck: true,
    enableOfflineQueue: role === 'worker',
    clusterRetryStrategy: retryStrategy,
    // A master that moved (failover, resharding) answers MOVED; ioredis follows it and refreshes.
    maxRedirections: 16,
  };
  return new Cluster(
    target.nodes.map((n) => ({ host: n.host, port: n.port })),
    options,
  );
}

/**
 * A connection for the role. For a cluster endpoint this is an ioredis Cluster typed as a Redis: both
 * are ioredis Commanders with the same command methods, BullMQ takes either (it tells them apart at
 * run time), and the engine's callers use only commands that a Cluster routes by key. The two
 * commands that answer for one node only, SCAN and INFO, go through `clusterMasters` where the engine
 * uses them (the eviction check, the erasure's deep scan). Typed as one so the engine and its tests
 * keep a single connection type.
 */
export function createRedis(endpoint: RedisEndpoint, role: RedisRole, log: Logger, name: string): Redis {
  const options: RedisOptions = { ...redisOptions(role), connectionName: name, lazyConnect: true };
  const client: Redis =
    'cluster' in endpoint
      ? (createCluster(endpoint.cluster, role, name) as unknown as Redis)
      : 'url' in endpoint
        ? new Redis(endpoint.url, options)
        : new Redis({ ...options, path: endpoint.socketPath });
  let lastError = '';
  // Without a listener ioredis would print every reconnect failure as an unhandled error event.
  client.on('error', (err: NodeJS.ErrnoException) => {
    const code = err.code ?? err.name;
    if (code !== lastError) log.warn({ redis: name, code }, 'Redis connection error');
    lastError = code;
  });
  client.on('ready', () => {
    if (lastError) log.info({ redis: name }, 'Redis connection restored');
    lastError = '';
  });
  return client;
}

/** `redis://user:secret@host:port/0` without the credentials, for messages and logs. */
export function describeEndpoint(endpoint: RedisEndpoint): string {
  if ('socketPath' in endpoint) return `unix:${endpoint.socketPath}`;
  if ('cluster' in endpoint) return `cluster ${endpoint.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  try {
    const u = new URL(endpoint.url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

/**
 * BullMQ keeps jobs as ordinary keys: a Redis that evicts under memory pressure silently loses
 * accepted work (invariant 6). Read the policy from INFO, which works where CONFIG is disabled.
 */
export async function assertNoEviction(client: Redis, endpoint: RedisEndpoint): Promise<void> {
  // INFO answers for the node it reaches: in a cluster, every master holds queue keys of its slots.
  for (const node of clusterMasters(client)) {
    const info = await node.info('memory');
    const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown';
    if (policy !== 'noeviction') {
      const where = 'cluster' in endpoint ? `Redis Cluster node ${node.options.host ?? '?'}:${node.options.port ?? '?'}` : `Redis at ${describeEndpoint(endpoint)}`;
      throw new AppError(
        'REDIS_EVICTION_POLICY',
        `${where} has maxmemory-policy '${policy}'; consentflow needs 'noeviction' so queued jobs are never evicted. ` +
          `Set it with \`redis-cli CONFIG SET maxmemory-policy noeviction\` (and in redis.conf), then start again.`,
      );
    }
  }
}

import { Redis, type RedisOptions } from 'ioredis';
import { AppError } from '../errors';
import type { Logger } from '../log/logger';

/** Where Redis is: a URL, or the unix socket of the engine's own embedded redis-server. */
export type RedisEndpoint = { readonly url: string } | { readonly socketPath: string };

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

export function createRedis(endpoint: RedisEndpoint, role: RedisRole, log: Logger, name: string): Redis {
  const options: RedisOptions = { ...redisOptions(role), connectionName: name, lazyConnect: true };
  const client = 'url' in endpoint ? new Redis(endpoint.url, options) : new Redis({ ...options, path: endpoint.socketPath });
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
  const info = await client.info('memory');
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown';
  if (policy !== 'noeviction') {
    throw new AppError(
      'REDIS_EVICTION_POLICY',
      `Redis at ${describeEndpoint(endpoint)} has maxmemory-policy '${policy}'; consentflow needs 'noeviction' so queued jobs are never evicted. ` +
        `Set it with \`redis-cli CONFIG SET maxmemory-policy noeviction\` (and in redis.conf), then start again.`,
    );
  }
}

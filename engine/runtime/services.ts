import type { Redis } from 'ioredis';
import type { Config, Keys } from '../config';
import { type Databases, openDatabases } from '../db/connect';
import { migrateToLatest } from '../db/migrate';
import { AppError } from '../errors';
import { Releasers } from '../lifecycle/releasers';
import type { Logger } from '../log/logger';
import { createMetrics, type Metrics } from '../metrics/registry';
import { Queues } from '../queues/producer';
import { queueSealingKey } from '../queues/sealing';
import { assertNoEviction, createRedis, describeEndpoint, type RedisEndpoint } from '../redis/connection';
import { resolveRedisEndpoint } from './redis-endpoint';
import { loadRules, type ReloadableRules } from './rules';
import { recordRuleSet } from '../automation/rule-set-versions';

/** The shared resources of one engine process, opened in order and released in reverse. */
export interface Services {
  readonly config: Config;
  readonly keys: Keys;
  readonly log: Logger;
  readonly databases: Databases;
  readonly redisEndpoint: RedisEndpoint;
  /** Fail-fast connection for producers and health checks. */
  readonly redis: Redis;
  readonly queues: Queues;
  readonly metrics: Metrics;
  readonly rules: ReloadableRules;
  readonly releasers: Releasers;
}

export interface OpenServicesOptions {
  readonly config: Config;
  readonly keys: Keys;
  readonly log: Logger;
  /** The PATH to look for redis-server on, for the embedded default. */
  readonly searchPath: string;
}

async function connectRedis(endpoint: RedisEndpoint, log: Logger): Promise<Redis> {
  const redis = createRedis(endpoint, 'producer', log, 'consentflow-producer');
  // connect() rejects with a generic "Connection is closed"; the socket error event has the cause.
  let cause: string | undefined;
  const recordCause = (err: NodeJS.ErrnoException) => {
    cause ??= err.code ?? err.message;
  };
  redis.on('error', recordCause);
  try {
    await redis.connect();
    await assertNoEviction(redis, endpoint);
    redis.off('error', recordCause);
    return redis;
  } catch (err) {
    redis.disconnect();
    if (err instanceof AppError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new AppError(
      'UNAVAILABLE',
      `Redis at ${describeEndpoint(endpoint)} is unreachable (${cause ?? e.code ?? e.message}): start it (\`docker compose up -d redis\`, or your distribution's redis-server package) or set REDIS_URL`,
      { cause: err },
    );
  }
}

/** Reads the rule files, opens Redis and PostgreSQL, checks Redis's eviction policy and migrates. On failure, closes what it opened. */
export async function openServices(options: OpenServicesOptions): Promise<Services> {
  const { config, keys, log } = options;
  // The rule files first: a mistake in them is reported before anything is opened.
  const rules = loadRules(config);
  const releasers = new Releasers();
  try {
    const redisEndpoint = await resolveRedisEndpoint(config, releasers, log, options.searchPath);
    const redis = await connectRedis(redisEndpoint, log);
    releasers.add('redis producer connection', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
    const databases = await openDatabases(config, log);
    releasers.add('databases', () => databases.close());
    await migrateToLatest(databases.db, databases.vaultDb, log);
    // Decisions name the rule set version they were made under; keep the set they can be traced to.
    await recordRuleSet(databases.db, rules.ruleSet);
    const queues = new Queues(redis, config.queuePrefix, queueSealingKey(keys.master));
    releasers.add('queues', () => queues.close());
    const unfinishedErasures = (overdue: boolean) => async () => {
      let query = databases.db
        .selectFrom('app.erasure_requests')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('state', '<>', 'completed');
      if (overdue) query = query.where('deadline_at', '<', new Date());
      return Number((await query.executeTakeFirstOrThrow()).n);
    };
    const metrics = createMetrics(queues, log, { overdueErasures: unfinishedErasures(true), openErasures: unfinishedErasures(false) });
    return { config, keys, log, databases, redisEndpoint, redis, queues, metrics, rules, releasers };
  } catch (err) {
    await releasers.releaseAll(log, config.shutdownTimeoutMs);
    throw err;
  }
}

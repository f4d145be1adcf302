import type { Redis } from 'ioredis';
import type { Config, Keys } from '../config';
import type { Databases } from '../db/connect';
import type { Logger } from '../log/logger';
import type { Metrics } from '../metrics/registry';
import type { Queues } from '../queues/producer';
import type { RedisEndpoint } from '../redis/connection';
import type { ReloadableRules } from '../runtime/rules';

/** What the HTTP layer is given; it opens and closes nothing itself. */
export interface HttpDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly databases: Databases;
  /** The fail-fast producer connection (see redis/connection.ts). */
  readonly redis: Redis;
  /** Where that connection goes: the pixel intake thread opens its own (engine/ingest/pixel-intake.ts). */
  readonly redisEndpoint: RedisEndpoint;
  readonly queues: Queues;
  readonly metrics: Metrics;
  readonly keys: Keys;
  readonly rules: ReloadableRules;
}

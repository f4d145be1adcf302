import { Redis } from 'ioredis';
import { TEST_REDIS_URL } from './env';

/**
 * Each test file queues under its own `{cft-…}` prefix; BullMQ leaves a few bookkeeping keys per
 * queue behind. Removed after the run so the shared Redis does not collect them run after run.
 */
export default async function globalTeardown(): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', '{cft-*', 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

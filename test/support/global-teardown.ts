import { Redis } from 'ioredis';
import { TEST_REDIS_URL, testRunId } from './env';

/**
 * Each test file queues under its own `{cft-RUN-…}` prefix; BullMQ leaves a few bookkeeping keys per
 * queue behind. This run's are removed after it so the shared Redis does not collect them run after
 * run; another run's (a second jest on the same machine) are left alone: removing them under its
 * running tests lost their jobs ("Missing key for job …").
 */
export default async function globalTeardown(): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{cft-${testRunId()}-*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

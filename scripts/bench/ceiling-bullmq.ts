/**
 * The raw BullMQ ceiling: no-op jobs added with `addBulk` (1,000 a call, as the API's micro-batches
 * are pipelined) and drained by a Worker whose processor does nothing, under a queue prefix of its
 * own. What the engine's queues could do if the jobs cost nothing.
 */
import { randomBytes } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { REDIS_URL } from './harness';
import { deleteKeys } from './redis-memory';

export interface BullmqCeiling {
  readonly jobs: number;
  readonly addedPerSec: number;
  /** Jobs a second a no-op Worker completed, by its concurrency. */
  readonly processedPerSec: ReadonlyArray<{ readonly concurrency: number; readonly perSec: number }>;
}

const CHUNK = 1_000;

async function addAll(queue: Queue, jobs: number): Promise<number> {
  const started = performance.now();
  for (let from = 0; from < jobs; from += CHUNK) {
    const n = Math.min(CHUNK, jobs - from);
    await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i: from + i }, opts: { removeOnComplete: true, removeOnFail: true } })));
  }
  return (performance.now() - started) / 1_000;
}

/** Seconds a Worker of `concurrency` takes to complete `jobs` no-op jobs already waiting, its start included. */
async function drain(name: string, prefix: string, jobs: number, concurrency: number): Promise<number> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const started = performance.now();
  const worker = new Worker(name, async () => undefined, { connection, prefix, concurrency });
  worker.on('completed', () => {
    if (++done === jobs) finish();
  });
  await finished;
  const seconds = (performance.now() - started) / 1_000;
  await worker.close();
  connection.disconnect();
  return seconds;
}

export async function measureBullmq(jobs: number, concurrencies: readonly number[]): Promise<BullmqCeiling> {
  const prefix = `{cf-bench-ceil-${randomBytes(4).toString('hex')}}`;
  const name = 'ceiling';
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: redis, prefix });
  try {
    let addSeconds = 0;
    const processedPerSec: Array<{ concurrency: number; perSec: number }> = [];
    for (const concurrency of concurrencies) {
      addSeconds += await addAll(queue, jobs);
      processedPerSec.push({ concurrency, perSec: jobs / (await drain(name, prefix, jobs, concurrency)) });
    }
    return { jobs, addedPerSec: (jobs * concurrencies.length) / addSeconds, processedPerSec };
  } finally {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await deleteKeys(redis, prefix).catch(() => undefined);
    redis.disconnect();
  }
}

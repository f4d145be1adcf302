/**
 * N delayed `email/send` jobs put on a queue of their own by the engine's producer (enqueueBulk, in
 * pages of 1,000), with the catalog's options and a delay, as the outbox relay puts each scheduled
 * send: what the sends cost in Redis at a given size, measured rather than extrapolated (the event
 * stream stops growing at its cap), and how long the producer alone takes to add them (the Redis
 * side's ceiling for scheduling). Used by bench:email and bench:delayed-sends.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Queues } from '../../engine/queues/producer';
import { queueSealingKey } from '../../engine/queues/sealing';
import type { Services } from '../../engine/runtime/services';
import { deleteKeys, deltaOf, type MemoryDelta, redisMemory } from './redis-memory';

export interface DelayedJobs {
  readonly memory: MemoryDelta;
  /** Seconds the adds took (pages of 1,000, one after the other), the memory readings not included. */
  readonly seconds: number;
}

/** `n` jobs under a scratch prefix, removed afterwards; due in an hour. */
export async function delayedSendJobs(services: Services, redis: Redis, n = 100_000): Promise<DelayedJobs> {
  const prefix = `{cf-bench-mem-${randomBytes(4).toString('hex')}}`;
  const queues = new Queues(services.redis, prefix, queueSealingKey(services.keys.master));
  try {
    const before = await redisMemory(redis, prefix);
    const started = performance.now();
    for (let from = 0; from < n; from += 1_000) {
      await queues.enqueueBulk(
        'email',
        'send',
        Array.from({ length: Math.min(1_000, n - from) }, () => {
          const sendId = randomUUID();
          return { payload: { sendId }, options: { jobId: `send-${sendId}`, delayMs: 3_600_000 } };
        }),
      );
    }
    const seconds = (performance.now() - started) / 1_000;
    return { memory: deltaOf(before, await redisMemory(redis, prefix)), seconds };
  } finally {
    await queues.close();
    await deleteKeys(redis, prefix);
  }
}

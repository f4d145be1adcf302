/**
 * Redis memory for benchmarks: what the keys under a queue prefix take (MEMORY USAGE of each, with
 * one queue's job hashes and event stream apart) beside the server's INFO used_memory, which also
 * counts the allocator's overhead and anything else on the server. Used by scripts/bench/email.ts.
 */
import type { Redis } from 'ioredis';

export interface RedisMemory {
  /** INFO memory's used_memory: the whole server, allocator overhead included. */
  readonly used: number;
  readonly keys: number;
  /** MEMORY USAGE summed over every key under the prefix; two kinds of them are also counted apart. */
  readonly keyBytes: number;
  /** The job hashes, one per job (`<prefix>:<queue>:send-…`: the email queue's send jobs). */
  readonly jobHashes: number;
  /** The queue's event stream, which BullMQ trims to `maxLenEvents` entries. */
  readonly events: number;
  readonly eventEntries: number;
}

/** INFO memory's used_memory: the whole server, allocator overhead included. */
export async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? NaN);
}

/** Calls `visit` with each key under the prefix and its MEMORY USAGE, a pipelined page at a time. */
export async function forEachKeySize(redis: Redis, prefix: string, visit: (key: string, bytes: number) => void): Promise<void> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
    cursor = next;
    if (batch.length === 0) continue;
    const pipeline = redis.pipeline();
    for (const key of batch) pipeline.memory('USAGE', key, 'SAMPLES', '0');
    const sizes = (await pipeline.exec()) ?? [];
    batch.forEach((key, i) => {
      const [err, size] = sizes[i] ?? [null, 0];
      if (err) throw err;
      visit(key, Number(size ?? 0));
    });
  } while (cursor !== '0');
}

/** `queue`: the queue whose job hashes (`<prefix>:<queue>:send-…`) and event stream are counted apart. */
export async function redisMemory(redis: Redis, prefix: string, queue = 'email'): Promise<RedisMemory> {
  const used = await usedMemory(redis);
  let keys = 0;
  let keyBytes = 0;
  let jobHashes = 0;
  let events = 0;
  await forEachKeySize(redis, prefix, (key, bytes) => {
    keys++;
    keyBytes += bytes;
    if (key.startsWith(`${prefix}:${queue}:send-`)) jobHashes += bytes;
    else if (key === `${prefix}:${queue}:events`) events += bytes;
  });
  const eventEntries = (await redis.exists(`${prefix}:${queue}:events`)) ? await redis.xlen(`${prefix}:${queue}:events`) : 0;
  return { used, keys, keyBytes, jobHashes, events, eventEntries };
}

/** What was added between two readings. */
export interface MemoryDelta {
  readonly used: number;
  readonly keyBytes: number;
  readonly jobHashes: number;
  readonly events: number;
  readonly eventEntries: number;
  readonly keys: number;
}

export const deltaOf = (before: RedisMemory, after: RedisMemory): MemoryDelta => ({
  used: after.used - before.used,
  keyBytes: after.keyBytes - before.keyBytes,
  jobHashes: after.jobHashes - before.jobHashes,
  events: after.events - before.events,
  eventEntries: after.eventEntries - before.eventEntries,
  keys: after.keys - before.keys,
});

/** Removes every key under the prefix. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1_000);
    cursor = next;
    if (batch.length > 0) await redis.unlink(...batch);
  } while (cursor !== '0');
}

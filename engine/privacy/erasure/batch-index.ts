import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { eventIdentityKeys } from '../../identity/keys';
import type { Queues } from '../../queues/producer';
import { openedJob } from './open-job';

/**
 * Which people each kept event batch holds, remembered per process, so that an erasure does not open
 * every batch kept in Redis: opening one (unseal: AES-GCM and inflate) and computing the blind
 * indexes of its events cost most of step 4, and every erasure met every kept batch again, so a
 * backlog of 300 batches made each small erasure cost ~80 ms of CPU.
 *
 * Sound because a batch only ever loses events (to erasures) and its id is never reused: BullMQ
 * numbers the API's batches from a counter. What a batch held when it was read is a superset of
 * what it holds now; a batch whose remembered identifiers miss the person does not hold them. The
 * key is the id with the job's creation time, so a counter reset by a Redis flush cannot match a
 * new batch to an old entry.
 */

const INDEX_SIZE = 20_000;

export interface BatchIndex {
  /** Identifier ids (IdentityKey.id) of each event, by `id:timestamp`. */
  readonly entries: Map<string, ReadonlySet<string>>;
}

export function createBatchIndex(): BatchIndex {
  return { entries: new Map() };
}

/** The one a process uses, so that erasures running one after another share it. */
export const processBatchIndex: BatchIndex = createBatchIndex();

export function identitiesOf(events: ReadonlyArray<{ event?: Record<string, unknown> }>, pseudonymKey: Buffer): string[][] {
  return events.map((e) => {
    const k = eventIdentityKeys(pseudonymKey, e.event ?? {});
    return [...k.keys, ...k.lookupOnly].map((i) => i.id);
  });
}

export function eventsOf(data: unknown): ReadonlyArray<{ event?: Record<string, unknown> }> {
  return (data as { events?: Array<{ event?: Record<string, unknown> }> } | null)?.events ?? [];
}

function remember(index: BatchIndex, key: string, ids: ReadonlySet<string>): void {
  if (index.entries.size >= INDEX_SIZE) index.entries.delete(index.entries.keys().next().value as string);
  index.entries.set(key, ids);
}

export interface BatchSearch {
  /** Batch ids whose events (as last read) name one of the identifiers. */
  readonly holding: string[];
  /** Batches opened for this search (not found in the index). */
  readonly opened: number;
}

/**
 * The kept batches (`states` of the events queue) that may hold one of `identityIds`: one round trip
 * for the ids, one for their creation times, and a read of only the batches not yet indexed.
 */
export async function batchesHolding(
  queues: Queues,
  redis: Redis,
  sealingKey: Buffer,
  pseudonymKey: Buffer,
  identityIds: ReadonlySet<string>,
  states: ReadonlyArray<'failed' | 'delayed'>,
  index: BatchIndex = processBatchIndex,
): Promise<BatchSearch> {
  const queue = queues.queue('events');
  const ids = await queue.getRanges([...states], 0, -1, true);
  if (ids.length === 0) return { holding: [], opened: 0 };
  // One slot on a Redis Cluster: every key of a queue carries the prefix's hash tag (QUEUE_PREFIX).
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hget(queue.toKey(id), 'timestamp');
  const stamps = (await pipeline.exec()) ?? [];
  const holding: string[] = [];
  const unknown: Array<{ id: string; key: string }> = [];
  ids.forEach((id, i) => {
    const stamp = stamps[i]?.[1];
    if (typeof stamp !== 'string') return; // gone since the ids were read
    const key = `${id}:${stamp}`;
    const known = index.entries.get(key);
    if (!known) unknown.push({ id, key });
    else if (intersects(known, identityIds)) holding.push(id);
  });
  const jobs = await Promise.all(unknown.map(({ id }) => queue.getJob(id)));
  unknown.forEach(({ id, key }, i) => {
    const job = jobs[i];
    if (!job) return;
    const held = new Set(identitiesOfJob(job, sealingKey, pseudonymKey).flat());
    remember(index, key, held);
    if (intersects(held, identityIds)) holding.push(id);
  });
  return { holding, opened: unknown.length };
}

function intersects(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const v of small) if (large.has(v)) return true;
  return false;
}

/** The identifier ids of each event of a batch job (none if its seal does not open). */
export function identitiesOfJob(job: Job, sealingKey: Buffer, pseudonymKey: Buffer): string[][] {
  const open = openedJob('events', job, sealingKey);
  return open ? identitiesOf(eventsOf(open.data), pseudonymKey) : [];
}

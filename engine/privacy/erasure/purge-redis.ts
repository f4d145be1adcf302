import { createHash, randomUUID } from 'node:crypto';
import type { Job, JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import { eventIdentityKeys } from '../../identity/keys';
import { QUEUE_NAMES, type QueueName, jobDefinition } from '../../queues/catalog';
import type { Queues } from '../../queues/producer';
import { SealingError, seal, unseal } from '../../queues/sealing';

/**
 * Step 4: the person's jobs in Redis. Jobs that are theirs alone (a send, a wake-up, a confirmation)
 * have deterministic ids and are removed by id. Event batches mix many people: a batch that will
 * outlive its processing (failed and kept for the dead-letter view, or delayed for a retry that may
 * end failed) is opened and the person's events are taken out of it, or the job removed if nothing
 * else is left. A batch waiting for the worker is left to the tombstones of step 1: its events of
 * the person are dropped when it is processed, and the job goes when it completes. Searching the
 * whole backlog on every erasure would make its cost grow with the backlog, not with the person.
 * An active job cannot be touched; it is counted as busy and the step runs again.
 */

export interface RedisPurgeInput {
  readonly jobs: ReadonlyArray<{ queue: string; id: string }>;
  /** Identifiers as `kind:hex` (IdentityKey.id), to recognise the person's events. */
  readonly identityIds: ReadonlySet<string>;
  /** Every uuid of theirs (profiles, sends, enrolments, confirmations), to recognise other payloads. */
  readonly uuids: ReadonlySet<string>;
}

export interface RedisPurge {
  removed: number;
  /** Entries of BullMQ's per-queue event streams that named the person's jobs. */
  streamEntries: number;
  rewritten: number;
  eventsRemoved: number;
  busy: number;
}

/**
 * Where jobs not found by id can still hold the person after their processing: event batches kept
 * failed or delayed for a retry (they mix people); in the other queues, jobs are one person's each
 * and found by id, so only the failed ones kept for the dead-letter view are searched (a wake-up of
 * an older journey state, say). Completed jobs are removed at once (engine/queues/worker.ts).
 */
const SCANNED_STATES: Readonly<Partial<Record<QueueName, readonly JobType[]>>> = {
  events: ['failed', 'delayed'],
  journeys: ['failed'],
  broadcasts: ['failed'],
  email: ['failed'],
  erasure: [],
};
const PAGE = 500;
const STREAMS_NAMING_PEOPLE: readonly QueueName[] = ['email', 'journeys'];

/**
 * The identifiers of each event of a batch, by the batch's id and content: a batch kept in Redis is
 * searched by every erasure, and opening it and computing its blind indexes is most of the cost.
 * Bounded; a rewritten batch has another content, so another entry.
 */
const batchIdentities = new Map<string, string[][]>();
const BATCH_CACHE_SIZE = 2_000;

function identitiesOfBatch(job: Job, events: ReadonlyArray<{ event?: Record<string, unknown> }>, pseudonymKey: Buffer): string[][] {
  const key = `${job.id}:${createHash('sha1').update(JSON.stringify(job.data)).digest('base64')}`;
  let ids = batchIdentities.get(key);
  if (!ids) {
    ids = events.map((e) => {
      const k = eventIdentityKeys(pseudonymKey, e.event ?? {});
      return [...k.keys, ...k.lookupOnly].map((i) => i.id);
    });
    if (batchIdentities.size >= BATCH_CACHE_SIZE) batchIdentities.delete(batchIdentities.keys().next().value as string);
    batchIdentities.set(key, ids);
  }
  return ids;
}

function mentions(text: string, uuids: ReadonlySet<string>): boolean {
  for (const match of text.matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi)) if (uuids.has(match[0].toLowerCase())) return true;
  return false;
}

async function removeJob(job: Job, result: RedisPurge): Promise<void> {
  try {
    await job.remove();
    result.removed++;
  } catch {
    // Locked by a worker that is running it right now.
    result.busy++;
  }
}

export async function purgeRedis(queues: Queues, redis: Redis, sealingKey: Buffer, pseudonymKey: Buffer, input: RedisPurgeInput): Promise<RedisPurge> {
  const result: RedisPurge = { removed: 0, streamEntries: 0, rewritten: 0, eventsRemoved: 0, busy: 0 };
  const ctx: PurgeContext = { queues, redis, sealingKey, pseudonymKey, input, result };
  for (const { queue, id } of input.jobs) {
    if (!QUEUE_NAMES.includes(queue as QueueName)) continue;
    const job = await queues.queue(queue as QueueName).getJob(id);
    if (job) await removeJob(job, result);
  }
  for (const name of QUEUE_NAMES) {
    const queue = queues.queue(name);
    const states = SCANNED_STATES[name] ?? ['failed'];
    if (states.length === 0) continue;
    // Pages by position: a removal shifts later jobs up, so a page is re-read until nothing changes on it.
    for (let start = 0; ; ) {
      const page = await queue.getJobs([...states], start, start + PAGE - 1, true);
      if (page.length === 0) break;
      let changed = false;
      for (const job of page) {
        if (!job) continue;
        const outcome = await purgeJob(name, job, ctx);
        if (outcome === 'removed') changed = true;
      }
      if (!changed) start += PAGE;
    }
  }
  // BullMQ's event stream of each queue ("added", "delayed", "completed"… with the job id and its
  // return value) is a log of job ids: the person's entries go too. Only the queues whose job ids
  // or results name a person (sends, confirmations, wake-ups) are read; event batches, ticks,
  // erasures and maintenance have ids of their own.
  const needles = [...input.uuids];
  for (const name of STREAMS_NAMING_PEOPLE) {
    const key = queues.queue(name).keys.events as string;
    for (let from = '-'; ; ) {
      const entries = await redis.xrange(key, from, '+', 'COUNT', '1000');
      if (entries.length === 0) break;
      const theirs = entries.filter(([, fields]) => {
        const text = fields.join(' ').toLowerCase();
        return needles.some((n) => text.includes(n));
      });
      if (theirs.length > 0) result.streamEntries += await redis.xdel(key, ...theirs.map(([id]) => id));
      const lastId = entries[entries.length - 1]?.[0] as string;
      if (entries.length < 1000) break;
      from = `(${lastId}`;
    }
  }
  return result;
}

interface PurgeContext {
  readonly queues: Queues;
  readonly redis: Redis;
  readonly sealingKey: Buffer;
  readonly pseudonymKey: Buffer;
  readonly input: RedisPurgeInput;
  readonly result: RedisPurge;
}

async function removeIfRemovable(job: Job, result: RedisPurge): Promise<'removed' | 'kept'> {
  const before = result.removed;
  await removeJob(job, result);
  return result.removed > before ? 'removed' : 'kept';
}

function opened(queue: QueueName, job: Job, sealingKey: Buffer): { data: unknown } | undefined {
  if (!jobDefinition(queue, job.name)?.sealed) return { data: job.data };
  try {
    return { data: unseal(sealingKey, `${queue}/${job.name}`, job.data) };
  } catch (err) {
    if (err instanceof SealingError) return undefined;
    throw err;
  }
}

async function purgeJob(queue: QueueName, job: Job, ctx: PurgeContext): Promise<'removed' | 'kept'> {
  if (job.id && mentions(job.id, ctx.input.uuids)) return removeIfRemovable(job, ctx.result);
  if (queue === 'events' && job.name === 'ingest') {
    // Batches only ever lose events (to erasures), so a batch without the person's events as read
    // here will not have them later either, and needs no lock.
    if (!holdsThePerson(queue, job, ctx)) return 'kept';
    // Two erasures may rewrite one batch at once: each takes the batch's lock and reads it afresh,
    // so neither writes back events the other took out.
    return withBatchLock(ctx.redis, `${ctx.queues.prefix}:erasure-lock:${queue}:${job.id}`, async () => {
      const fresh = await ctx.queues.queue(queue).getJob(job.id as string);
      return fresh ? purgeBatch(queue, fresh, ctx) : 'kept';
    });
  }
  const open = opened(queue, job, ctx.sealingKey);
  if (open && mentions(JSON.stringify(open.data ?? null), ctx.input.uuids)) return removeIfRemovable(job, ctx.result);
  return 'kept';
}

async function withBatchLock<T>(redis: Redis, key: string, work: () => Promise<T>): Promise<T> {
  const token = randomUUID();
  for (let waited = 0; (await redis.set(key, token, 'PX', 30_000, 'NX')) !== 'OK'; waited += 5) {
    if (waited > 30_000) throw new Error('an event batch stayed locked by another erasure for 30 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  try {
    return await work();
  } finally {
    if ((await redis.get(key)) === token) await redis.del(key);
  }
}

function eventsOf(data: unknown): ReadonlyArray<{ event?: Record<string, unknown> }> {
  return (data as { events?: Array<{ event?: Record<string, unknown> }> } | null)?.events ?? [];
}

function holdsThePerson(queue: QueueName, job: Job, ctx: PurgeContext): boolean {
  const open = opened(queue, job, ctx.sealingKey);
  if (!open) return false;
  return identitiesOfBatch(job, eventsOf(open.data), ctx.pseudonymKey).some((ids) => ids.some((id) => ctx.input.identityIds.has(id)));
}

/** Takes the person's events out of one batch: rewritten (sealed again), or removed if nothing is left. */
async function purgeBatch(queue: QueueName, job: Job, ctx: PurgeContext): Promise<'removed' | 'kept'> {
  const open = opened(queue, job, ctx.sealingKey);
  if (!open) return 'kept';
  const data = open.data as { events?: Array<{ event?: Record<string, unknown> }> };
  const events = data.events ?? [];
  const ids = identitiesOfBatch(job, events, ctx.pseudonymKey);
  const rest = events.filter((_, i) => !(ids[i] ?? []).some((id) => ctx.input.identityIds.has(id)));
  if (rest.length === events.length) return 'kept';
  ctx.result.eventsRemoved += events.length - rest.length;
  if (rest.length === 0) return removeIfRemovable(job, ctx.result);
  const sealed = jobDefinition(queue, job.name)?.sealed;
  await job.updateData(sealed ? seal(ctx.sealingKey, `${queue}/${job.name}`, { ...data, events: rest }) : { ...data, events: rest });
  ctx.result.rewritten++;
  return 'kept';
}

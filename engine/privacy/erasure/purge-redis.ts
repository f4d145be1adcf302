import { randomUUID } from 'node:crypto';
import type { Job, JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName, jobDefinition } from '../../queues/catalog';
import type { Queues } from '../../queues/producer';
import { seal } from '../../queues/sealing';
import { batchesHolding, eventsOf, identitiesOf } from './batch-index';
import { openedJob } from './open-job';
import { deleteStreamEntriesNaming } from './stream-index';

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
const EVENT_BATCH_STATES = ['failed', 'delayed'] as const;
const SCANNED_STATES: Readonly<Partial<Record<QueueName, readonly JobType[]>>> = {
  events: [], // event batches: EVENT_BATCH_STATES, through the per-process index (batch-index.ts)
  journeys: ['failed'],
  broadcasts: ['failed'],
  email: ['failed'],
  erasure: [],
};
const PAGE = 500;
const STREAMS_NAMING_PEOPLE: readonly QueueName[] = ['email', 'journeys'];

/** Removes a job; false if a worker holds it right now (it is running). */
async function removed(job: Job): Promise<boolean> {
  try {
    await job.remove();
    return true;
  } catch {
    return false;
  }
}

export async function purgeRedis(queues: Queues, redis: Redis, sealingKey: Buffer, pseudonymKey: Buffer, input: RedisPurgeInput): Promise<RedisPurge> {
  const { each, busy, streamEntries } = await purgeRedisMany(queues, redis, sealingKey, pseudonymKey, [input]);
  return { ...(each[0] as RedisPurge), busy, streamEntries };
}

/**
 * Step 4 for several people at once (grouped erasures): one pass over the kept batches, failed jobs
 * and event streams for all of them, with what was removed attributed to each (`each`, in order).
 */
export async function purgeRedisMany(
  queues: Queues,
  redis: Redis,
  sealingKey: Buffer,
  pseudonymKey: Buffer,
  inputs: readonly RedisPurgeInput[],
): Promise<{ each: RedisPurge[]; busy: number; streamEntries: number }> {
  const each = inputs.map((): RedisPurge => ({ removed: 0, streamEntries: 0, rewritten: 0, eventsRemoved: 0, busy: 0 }));
  const ctx: PurgeContext = { queues, redis, sealingKey, pseudonymKey, inputs, each, busy: 0 };
  for (const [i, input] of inputs.entries()) {
    for (const { queue, id } of input.jobs) {
      if (!QUEUE_NAMES.includes(queue as QueueName)) continue;
      const job = await queues.queue(queue as QueueName).getJob(id);
      if (job) await removeFor(job, i, ctx);
    }
  }
  // Event batches: only those the per-process index says may hold someone are opened.
  const identityIds = new Set(inputs.flatMap((input) => [...input.identityIds]));
  const kept = await batchesHolding(queues, redis, sealingKey, pseudonymKey, identityIds, EVENT_BATCH_STATES);
  for (const id of kept.holding) await purgeHeldBatch(id, ctx);
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
  const uuids = new Set(inputs.flatMap((input) => [...input.uuids]));
  let streamEntries = 0;
  for (const name of STREAMS_NAMING_PEOPLE) {
    streamEntries += await deleteStreamEntriesNaming(redis, queues.queue(name).keys.events as string, uuids);
  }
  return { each, busy: ctx.busy, streamEntries };
}

interface PurgeContext {
  readonly queues: Queues;
  readonly redis: Redis;
  readonly sealingKey: Buffer;
  readonly pseudonymKey: Buffer;
  readonly inputs: readonly RedisPurgeInput[];
  readonly each: RedisPurge[];
  busy: number;
}

async function removeFor(job: Job, owner: number, ctx: PurgeContext): Promise<'removed' | 'kept'> {
  if (await removed(job)) {
    (ctx.each[owner] as RedisPurge).removed++;
    return 'removed';
  }
  // Locked by a worker that is running it right now.
  ctx.busy++;
  (ctx.each[owner] as RedisPurge).busy++;
  return 'kept';
}

/** The first of the people whose uuids the text names, or -1. */
function ownerMentioned(text: string, ctx: PurgeContext): number {
  for (const match of text.matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi)) {
    const owner = ctx.inputs.findIndex((input) => input.uuids.has(match[0].toLowerCase()));
    if (owner >= 0) return owner;
  }
  return -1;
}

async function purgeJob(queue: QueueName, job: Job, ctx: PurgeContext): Promise<'removed' | 'kept'> {
  const byId = job.id ? ownerMentioned(job.id, ctx) : -1;
  if (byId >= 0) return removeFor(job, byId, ctx);
  const open = openedJob(queue, job, ctx.sealingKey);
  const byData = open ? ownerMentioned(JSON.stringify(open.data ?? null), ctx) : -1;
  return byData >= 0 ? removeFor(job, byData, ctx) : 'kept';
}

/**
 * A batch that held someone's events when last read. Two erasures may rewrite one batch at once:
 * each takes the batch's lock and reads it afresh, so neither writes back events the other took out.
 */
async function purgeHeldBatch(id: string, ctx: PurgeContext): Promise<void> {
  await withBatchLock(ctx.redis, `${ctx.queues.prefix}:erasure-lock:events:${id}`, async () => {
    const fresh = await ctx.queues.queue('events').getJob(id);
    if (fresh) await purgeBatch(fresh, ctx);
  });
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

/** Takes the people's events out of one batch: rewritten (sealed again), or removed if nothing is left. */
async function purgeBatch(job: Job, ctx: PurgeContext): Promise<void> {
  const open = openedJob('events', job, ctx.sealingKey);
  if (!open) return;
  const data = open.data as { events?: Array<{ event?: Record<string, unknown> }> };
  const events = eventsOf(data);
  const ids = identitiesOf(events, ctx.pseudonymKey);
  const owners = ids.map((eventIds) => ctx.inputs.findIndex((input) => eventIds.some((id) => input.identityIds.has(id))));
  const rest = events.filter((_, i) => owners[i] === -1);
  if (rest.length === events.length) return;
  for (const owner of owners) if (owner >= 0) (ctx.each[owner] as RedisPurge).eventsRemoved++;
  const first = owners.find((owner) => owner >= 0) as number;
  if (rest.length === 0) {
    await removeFor(job, first, ctx);
    return;
  }
  const sealed = jobDefinition('events', job.name)?.sealed;
  await job.updateData(sealed ? seal(ctx.sealingKey, `events/${job.name}`, { ...data, events: rest }) : { ...data, events: rest });
  (ctx.each[first] as RedisPurge).rewritten++;
}

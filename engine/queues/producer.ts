import { type JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AppError } from '../errors';
import { JOB_CATALOG, type JobName, type JobPayload, QUEUE_NAMES, type QueueName, jobDefinition } from './catalog';
import { seal } from './sealing';

const COUNTED_STATES = ['wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;
export type QueueCounts = Record<(typeof COUNTED_STATES)[number], number>;

export interface EnqueueOptions {
  /** A deterministic id makes a retried enqueue a no-op while the job exists (invariant 6). */
  readonly jobId?: string;
  readonly delayMs?: number;
}

/** The producer side of every queue in the catalog, over one fail-fast connection. */
export class Queues {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: Redis,
    readonly prefix: string,
    /** Seals the payloads of jobs marked `sealed` in the catalog (queueSealingKey of the master key). */
    private readonly sealingKey: Buffer,
  ) {}

  queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, {
        connection: this.connection,
        prefix: this.prefix,
        skipWaitingForReady: true,
        // BullMQ logs every job's events (added, completed… with the job id) in a stream per queue.
        // Nothing here reads it but a live listener; a short one costs less memory, and less for
        // erasure to search (engine/privacy/erasure/purge-redis.ts). Trimming is approximate.
        streams: { events: { maxLen: 1_000 } },
        // How long finished jobs stay is the worker's setting (engine/queues/worker.ts), not stored in
        // every job: each job's options then fit Redis's compact encoding better (bench:email).
      });
      // Errors surface on the calls that hit them; the event would otherwise be unhandled.
      queue.on('error', () => {});
      this.queues.set(name, queue);
    }
    return queue;
  }

  private options<Q extends QueueName>(queue: Q, name: JobName<Q>, options: EnqueueOptions = {}): JobsOptions {
    const def = jobDefinition(queue, name);
    if (!def) throw new AppError('INTERNAL', `job ${queue}/${name} is not in the job catalog`);
    return {
      attempts: def.attempts,
      backoff: { ...def.backoff },
      ...(options.jobId !== undefined ? { jobId: options.jobId } : {}),
      ...(options.delayMs !== undefined ? { delay: options.delayMs } : {}),
    };
  }

  /** What goes to Redis: the payload checked against its schema (unless prevalidated), sealed if the catalog says so. */
  private data<Q extends QueueName, J extends JobName<Q>>(queue: Q, name: J, payload: JobPayload<Q, J>, prevalidated = false): unknown {
    const def = jobDefinition(queue, name);
    if (!def) throw new AppError('INTERNAL', `job ${queue}/${name} is not in the job catalog`);
    const checked: unknown = prevalidated ? payload : def.payload.parse(payload);
    return def.sealed ? seal(this.sealingKey, `${queue}/${name}`, checked) : checked;
  }

  async enqueue<Q extends QueueName, J extends JobName<Q>>(
    queue: Q,
    name: J,
    payload: JobPayload<Q, J>,
    options?: EnqueueOptions,
  ): Promise<string> {
    const job = await this.queue(queue).add(name, this.data(queue, name, payload), this.options(queue, name, options));
    return job.id ?? '';
  }

  /**
   * Many jobs in one pipelined round trip: the ingest path's micro-batches use this. `prevalidated`
   * skips the schema check for payloads the engine assembled from parts it validated already (the
   * worker parses every payload again anyway); it exists for the ingest hot path only.
   */
  async enqueueBulk<Q extends QueueName, J extends JobName<Q>>(
    queue: Q,
    name: J,
    jobs: ReadonlyArray<{ payload: JobPayload<Q, J>; options?: EnqueueOptions }>,
    { prevalidated = false }: { prevalidated?: boolean } = {},
  ): Promise<void> {
    await this.queue(queue).addBulk(
      jobs.map((job) => ({
        name,
        data: this.data(queue, name, job.payload, prevalidated),
        opts: this.options(queue, name, job.options),
      })),
    );
  }

  /** A cron job scheduler (BullMQ): one id per schedule, upserted so processes agree on one. */
  async upsertScheduler<Q extends QueueName, J extends JobName<Q>>(
    queue: Q,
    schedulerId: string,
    repeat: { pattern: string; tz: string },
    name: J,
    payload: JobPayload<Q, J>,
  ): Promise<void> {
    await this.queue(queue).upsertJobScheduler(schedulerId, repeat, { name, data: this.data(queue, name, payload) as never, opts: this.options(queue, name) });
  }

  async schedulerIds(queue: QueueName): Promise<string[]> {
    return (await this.queue(queue).getJobSchedulers()).map((s) => s.key);
  }

  async removeScheduler(queue: QueueName, schedulerId: string): Promise<void> {
    await this.queue(queue).removeJobScheduler(schedulerId);
  }

  /** Job counts per state for every queue in the catalog (for /metrics and the admin API). */
  async counts(): Promise<Record<QueueName, QueueCounts>> {
    const entries = await Promise.all(
      QUEUE_NAMES.map(async (name) => {
        const raw = await this.queue(name).getJobCounts(...COUNTED_STATES);
        const counts = Object.fromEntries(COUNTED_STATES.map((state) => [state, raw[state] ?? 0])) as QueueCounts;
        return [name, counts] as const;
      }),
    );
    return Object.fromEntries(entries) as Record<QueueName, QueueCounts>;
  }

  /**
   * For every queue, how long its oldest waiting job has been due, in ms (0 when none waits). BullMQ
   * takes jobs from the right end of the wait list, so `getWaiting(0, 0)` (ascending) is the next one
   * out, the longest waiting. Due since its creation plus its delay: a delayed job waits from then.
   */
  async oldestWaitingAgesMs(now = Date.now()): Promise<Record<QueueName, number>> {
    const entries = await Promise.all(
      QUEUE_NAMES.map(async (name) => {
        const [oldest] = await this.queue(name).getWaiting(0, 0);
        const dueAt = oldest ? oldest.timestamp + (oldest.opts.delay ?? 0) : now;
        return [name, Math.max(0, now - dueAt)] as const;
      }),
    );
    return Object.fromEntries(entries) as Record<QueueName, number>;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    this.queues.clear();
  }
}

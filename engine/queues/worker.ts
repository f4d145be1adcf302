import { type Job, type KeepJobs, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../log/logger';
import { JOB_CATALOG, type JobName, type JobPayload, type QueueName, jobDefinition } from './catalog';
import { SealingError, unseal } from './sealing';

export interface JobContext {
  readonly job: Job;
  readonly log: Logger;
  /** Aborted when the job's time is up or the worker is shutting down; long handlers should check it. */
  readonly signal: AbortSignal;
}

export type JobHandlers<Q extends QueueName> = {
  readonly [J in JobName<Q>]: (payload: JobPayload<Q, J>, context: JobContext) => Promise<unknown>;
};

/** BullMQ workers take KeepJobs only: `true` (remove at once) is keeping none. */
function keepJobs(setting: boolean | KeepJobs): KeepJobs | undefined {
  if (setting === true) return { count: 0 };
  if (setting === false) return undefined;
  return setting;
}

export class JobTimeoutError extends Error {
  override readonly name = 'JobTimeoutError';
}

export interface StartWorkerOptions {
  /** A connection with maxRetriesPerRequest: null (see redis/connection.ts); BullMQ duplicates it. */
  readonly connection: Redis;
  readonly prefix: string;
  readonly log: Logger;
  /** Opens sealed payloads (queueSealingKey of the master key). */
  readonly sealingKey: Buffer;
  readonly concurrency?: number;
  /** At most `max` jobs per `durationMs`, across every worker of the queue (BullMQ's global limiter). */
  readonly limiter?: { readonly max: number; readonly durationMs: number };
}

/**
 * A BullMQ worker for one catalog queue. Each job's payload is parsed again when taken: a payload
 * that does not match its schema can never succeed, so it fails at once with UnrecoverableError
 * instead of burning its retries.
 */
export function startWorker<Q extends QueueName>(queue: Q, handlers: JobHandlers<Q>, options: StartWorkerOptions): Worker {
  const log = options.log.child({ queue });
  const worker = new Worker(
    queue,
    async (job, _token, workerSignal) => {
      const def = jobDefinition(queue, job.name);
      const handler = (handlers as Record<string, ((payload: unknown, context: JobContext) => Promise<unknown>) | undefined>)[job.name];
      if (!def || !handler) throw new UnrecoverableError(`job name '${job.name}' is not in the catalog for queue '${queue}'`);
      let data: unknown = job.data;
      if (def.sealed) {
        try {
          data = unseal(options.sealingKey, `${queue}/${job.name}`, job.data);
        } catch (err) {
          throw new UnrecoverableError(`payload of ${queue}/${job.name}: ${err instanceof SealingError ? err.message : 'cannot be opened'}`);
        }
      }
      const parsed = def.payload.safeParse(data);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new UnrecoverableError(
          `payload of ${queue}/${job.name} does not match its schema: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
        );
      }
      const timeout = new AbortController();
      const signal = workerSignal ? AbortSignal.any([timeout.signal, workerSignal]) : timeout.signal;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timeout.abort();
          reject(new JobTimeoutError(`job ${queue}/${job.name} ran longer than ${def.timeoutMs} ms`));
        }, def.timeoutMs);
      });
      try {
        return await Promise.race([handler(parsed.data, { job, log, signal }), timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
    {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency ?? JOB_CATALOG[queue].concurrency,
      autorun: true,
      ...(options.limiter ? { limiter: { max: options.limiter.max, duration: options.limiter.durationMs } } : {}),
      // The catalog's retention of finished jobs, applied by the worker when a job ends.
      removeOnComplete: keepJobs(JOB_CATALOG[queue].removeOnComplete),
      removeOnFail: keepJobs(JOB_CATALOG[queue].removeOnFail),
    },
  );
  worker.on('failed', (job, err) =>
    log.warn({ jobId: job?.id, job: job?.name, attempt: job?.attemptsMade, err: { name: err.name, message: err.message } }, 'job failed'),
  );
  worker.on('error', (err) => log.warn({ err: { name: err.name, message: err.message } }, 'worker error'));
  return worker;
}

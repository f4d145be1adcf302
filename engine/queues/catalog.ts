import type { KeepJobs } from 'bullmq';
import type { z } from 'zod';
import { BroadcastTickJob, ConfirmationEmailJob, ErasureJob, ForgetConfirmationJob, IngestBatchJob, JourneyWakeJob, RetentionJob, SendEmailJob } from '../../schemas/jobs';

export interface JobDefinition<Payload extends z.ZodType = z.ZodType> {
  readonly payload: Payload;
  readonly attempts: number;
  readonly backoff: { readonly type: 'exponential' | 'fixed'; readonly delay: number };
  /** A run longer than this fails the attempt (and is retried while attempts remain). */
  readonly timeoutMs: number;
  /** Payloads that may carry PII are sealed before they reach Redis (see sealing.ts). */
  readonly sealed: boolean;
}

export interface QueueDefinition {
  readonly description: string;
  readonly jobs: Readonly<Record<string, JobDefinition>>;
  /**
   * How long finished jobs stay in Redis: completed jobs go at once; failed ones (sealed, when their
   * payload may carry PII) are kept for the dead-letter view.
   */
  readonly removeOnComplete: boolean | KeepJobs;
  readonly removeOnFail: boolean | KeepJobs;
  /** Jobs a worker process runs at once for this queue. */
  readonly concurrency: number;
}

const DAY_SECONDS = 24 * 60 * 60;

/**
 * The one job catalog: queue → job name → payload schema and retry policy. `enqueue` and worker
 * handlers are typed from it, so a job that is not here cannot be added or handled.
 */
export const JOB_CATALOG = {
  events: {
    description: 'tracking events accepted by the API, waiting for the events worker',
    jobs: {
      ingest: { payload: IngestBatchJob, attempts: 10, backoff: { type: 'exponential', delay: 500 }, timeoutMs: 60_000, sealed: true },
    },
    removeOnComplete: true,
    removeOnFail: { age: 7 * DAY_SECONDS, count: 10_000 },
    concurrency: 2,
  },
  journeys: {
    description: 'journey wake-ups, relayed from app.outbox as delayed jobs with deterministic ids',
    jobs: {
      wake: { payload: JourneyWakeJob, attempts: 10, backoff: { type: 'exponential', delay: 1_000 }, timeoutMs: 60_000, sealed: false },
    },
    removeOnComplete: true,
    removeOnFail: { age: 7 * DAY_SECONDS, count: 10_000 },
    concurrency: 4,
  },
  broadcasts: {
    description: 'cron ticks of broadcast campaigns (BullMQ job schedulers); each tick fans out in pages',
    jobs: {
      tick: { payload: BroadcastTickJob, attempts: 10, backoff: { type: 'exponential', delay: 5_000 }, timeoutMs: 15 * 60_000, sealed: false },
    },
    removeOnComplete: true,
    removeOnFail: { age: 7 * DAY_SECONDS, count: 1_000 },
    concurrency: 1,
  },
  email: {
    description: 'emails to send: double opt-in confirmations and campaign sends (relayed from app.outbox when due)',
    jobs: {
      confirmation: { payload: ConfirmationEmailJob, attempts: 8, backoff: { type: 'exponential', delay: 2_000 }, timeoutMs: 60_000, sealed: false },
      forget_confirmation: { payload: ForgetConfirmationJob, attempts: 8, backoff: { type: 'exponential', delay: 2_000 }, timeoutMs: 60_000, sealed: false },
      // SMTP 4xx and lost connections retry with backoff for about 17 hours; a 5xx fails at once.
      send: { payload: SendEmailJob, attempts: 15, backoff: { type: 'exponential', delay: 2_000 }, timeoutMs: 60_000, sealed: false },
    },
    removeOnComplete: true,
    removeOnFail: { age: 7 * DAY_SECONDS, count: 10_000 },
    // Sends wait mostly on PostgreSQL and the relay, and the jobs running at once are claimed together
    // (engine/email/send-step.ts createSender): more at once means bigger batches, fewer statements.
    concurrency: 64,
  },
  erasure: {
    description: 'erasure requests (GDPR Art. 17), committed in app.erasure_requests first; each step resumes after a crash',
    jobs: {
      // Backoff up to about 4 days over 20 attempts; the request's deadline alert watches beyond that.
      erase: { payload: ErasureJob, attempts: 20, backoff: { type: 'exponential', delay: 5_000 }, timeoutMs: 10 * 60_000, sealed: false },
    },
    removeOnComplete: true,
    removeOnFail: { age: 30 * DAY_SECONDS, count: 10_000 },
    // Jobs running at once are grouped (workers/erasure.ts): the concurrency is the group's size.
    concurrency: 50,
  },
  maintenance: {
    description: 'housekeeping from job schedulers: the daily retention run (GDPR Art. 5(1)(e)), engine/privacy/retention',
    jobs: {
      // Every step is idempotent: a retry (or a second process) redoes only what is left.
      retention: { payload: RetentionJob, attempts: 3, backoff: { type: 'exponential', delay: 60_000 }, timeoutMs: 60 * 60_000, sealed: false },
    },
    removeOnComplete: true,
    removeOnFail: { age: 30 * DAY_SECONDS, count: 100 },
    concurrency: 1,
  },
} as const satisfies Record<string, QueueDefinition>;

export type JobCatalog = typeof JOB_CATALOG;
export type QueueName = keyof JobCatalog;
export type JobName<Q extends QueueName> = keyof JobCatalog[Q]['jobs'] & string;
type JobDef<Q extends QueueName, J extends JobName<Q>> = JobCatalog[Q]['jobs'][J];
export type JobPayload<Q extends QueueName, J extends JobName<Q>> =
  JobDef<Q, J> extends JobDefinition<infer S> ? z.infer<S> : never;

export const QUEUE_NAMES = Object.keys(JOB_CATALOG) as QueueName[];

export function isQueueName(name: string): name is QueueName {
  return Object.hasOwn(JOB_CATALOG, name);
}

export function jobDefinition(queue: QueueName, name: string): JobDefinition | undefined {
  const jobs: Readonly<Record<string, JobDefinition>> = JOB_CATALOG[queue].jobs;
  return Object.hasOwn(jobs, name) ? jobs[name] : undefined;
}

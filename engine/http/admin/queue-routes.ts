import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { QUEUE_NAMES, type QueueName } from '../../queues/catalog';
import type { Queues } from '../../queues/producer';
import { scrubText } from '../../privacy/scrub-text';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { acceptForms } from '../pages/respond';
import { noteAudit } from './auth';
import { adminRoute } from './route-table';
import { DASHBOARD_PATH } from './session';
import { jobTarget } from '../../audit/targets';

const QueueParam = z.enum(QUEUE_NAMES as [QueueName, ...QueueName[]], { error: `expected one of ${QUEUE_NAMES.join(', ')}` });

export const FailedJobsParams = z.strictObject({ queue: QueueParam });

export const FailedJobsQuery = z.strictObject({
  limit: z.coerce
    .number({ error: 'expected a number from 1 to 100' })
    .int('expected a number from 1 to 100')
    .min(1, 'expected a number from 1 to 100')
    .max(100, 'expected a number from 1 to 100')
    .default(20),
  start: z.coerce
    .number({ error: 'expected an offset from 0' })
    .int('expected an offset from 0')
    .min(0, 'expected an offset from 0')
    .max(1_000_000, 'expected an offset of at most 1000000')
    .default(0),
});

export const RetryJobParams = z.strictObject({
  queue: QueueParam,
  jobId: z
    .string()
    .min(1, 'expected a job id')
    .max(200, 'expected a job id of at most 200 characters')
    .regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed'),
});

/**
 * A failed job as an operator sees it: what it was, how often it ran and why it failed. Never its
 * payload, return value or stack trace: payloads carry traits and addresses (DESIGN.md invariant 1),
 * and the reason is scrubbed, since an error message can quote an address.
 */
export const FailedJob = z.object({
  id: z.string(),
  name: z.string(),
  attemptsMade: z.number().int(),
  failedReason: z.string().nullable(),
  createdAt: z.iso.datetime().nullable(),
  processedAt: z.iso.datetime().nullable(),
  failedAt: z.iso.datetime().nullable(),
});
export type FailedJob = z.infer<typeof FailedJob>;

export const FailedJobsPage = z.object({
  queue: z.string(),
  total: z.number().int(),
  start: z.number().int(),
  limit: z.number().int(),
  jobs: z.array(FailedJob),
});

export const RetriedJob = z.object({ queue: z.string(), jobId: z.string(), state: z.literal('waiting') });

const REASON_MAX = 1_000;
const isoOf = (ms: number | null | undefined): string | null => (typeof ms === 'number' && ms > 0 ? new Date(ms).toISOString() : null);

/** The failed jobs of a queue, latest first: only the fields of FailedJob are read out of each. */
export async function listFailedJobs(queues: Queues, name: QueueName, start: number, limit: number): Promise<{ total: number; jobs: FailedJob[] }> {
  const queue = queues.queue(name);
  const [total, jobs] = await Promise.all([queue.getFailedCount(), queue.getFailed(start, start + limit - 1)]);
  return {
    total,
    jobs: jobs
      .filter((job) => job !== undefined && job !== null)
      .map((job) => ({
        id: String(job.id ?? ''),
        name: job.name,
        attemptsMade: job.attemptsMade,
        failedReason: job.failedReason ? scrubText(job.failedReason).slice(0, REASON_MAX) : null,
        createdAt: isoOf(job.timestamp),
        processedAt: isoOf(job.processedOn),
        failedAt: isoOf(job.finishedOn),
      })),
  };
}

/**
 * Queues for operators: counts, dead letters (the failed jobs a queue keeps, engine/queues/catalog.ts
 * removeOnFail) and retries. Registered in a scope of their own: the retry route also takes the
 * dashboard's HTML form.
 */
export function queueRoutes(app: FastifyInstance, deps: HttpDeps): void {
  acceptForms(app);

  adminRoute(app, 'GET', '/queues', { roles: ['operator'], action: 'queues.read', summary: 'Job counts per queue and state' }, async () => ({
    queues: await deps.queues.counts(),
  }));

  const failed = {
    roles: ['operator'],
    action: 'queues.failed',
    summary: "A queue's failed jobs (dead letters), latest first: id, name, attempts, scrubbed reason, times; never the payload",
    params: FailedJobsParams,
    query: FailedJobsQuery,
    response: FailedJobsPage,
  } as const;
  adminRoute(app, 'GET', '/queues/:queue/failed', failed, async ({ params, query }) => {
    const page = await listFailedJobs(deps.queues, params.queue, query.start, query.limit);
    return { queue: params.queue, total: page.total, start: query.start, limit: query.limit, jobs: page.jobs };
  });

  const retry = {
    roles: ['operator'],
    action: 'queues.retry',
    summary: 'Retry a failed job (404: no such job; 409: the job is not failed)',
    params: RetryJobParams,
    response: RetriedJob,
    browser: true,
  } as const;
  adminRoute(app, 'POST', '/queues/:queue/jobs/:jobId/retry', retry, async ({ params }, request, reply) => {
    // The id comes from the URL: scrubbed like everything the audit log keeps (no PII in entries).
    noteAudit(request, { target: jobTarget(deps.keys, params.queue, params.jobId) });
    const job = await deps.queues.queue(params.queue).getJob(params.jobId);
    if (!job) return sendError(reply, 'NOT_FOUND', `no job ${params.jobId} in the queue ${params.queue}`, deps.metrics);
    const notFailed = (state: string) =>
      sendError(reply, 'CONFLICT', `job ${params.jobId} of the queue ${params.queue} is ${state}, not failed: only failed jobs can be retried`, deps.metrics);
    const state = await job.getState();
    if (state !== 'failed') return notFailed(state);
    try {
      await job.retry('failed');
    } catch (err) {
      // Another operator (or process) moved it in between.
      const now = await job.getState();
      if (now !== 'failed') return notFailed(now);
      throw err;
    }
    // A retry sent from the dashboard's form goes back there (303 See Other, RFC 9110 §15.4.4).
    if (request.adminSession) return reply.redirect(DASHBOARD_PATH, 303);
    return { queue: params.queue, jobId: params.jobId, state: 'waiting' as const };
  });
}

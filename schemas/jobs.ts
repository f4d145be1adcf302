import { z } from 'zod';
import { AcceptedEvent } from './segment';

/**
 * Payloads of every job, as they cross Redis. They are parsed again when a worker takes a job
 * (engine/queues/worker.ts): Redis is a boundary like any other.
 */

/**
 * Tracking events accepted by the API, waiting for the events worker. The API gathers the events of
 * many concurrent requests into one job (engine/ingest/enqueue-batcher.ts): one Redis round trip and
 * one worker transaction for many events.
 */
export const IngestBatchJob = z.object({
  events: z.array(AcceptedEvent).min(1).max(1_000),
});
export type IngestBatchJob = z.infer<typeof IngestBatchJob>;

/** A double opt-in confirmation to email; the id only (the address is read from the vault at send time). */
export const ConfirmationEmailJob = z.object({ confirmationId: z.uuid() });
export type ConfirmationEmailJob = z.infer<typeof ConfirmationEmailJob>;

/** A journey's wait is over (relayed from app.outbox): advance that person's due journeys. */
export const JourneyWakeJob = z.object({ enrolmentId: z.uuid(), wakeAt: z.iso.datetime({ offset: true }) });
export type JourneyWakeJob = z.infer<typeof JourneyWakeJob>;

/** A scheduled send that is due (relayed from app.outbox); the send row holds everything else. */
export const SendEmailJob = z.object({ sendId: z.uuid() });
export type SendEmailJob = z.infer<typeof SendEmailJob>;

/** A broadcast campaign's cron tick (from a BullMQ job scheduler). */
export const BroadcastTickJob = z.object({ campaignId: z.string().min(1).max(63) });
export type BroadcastTickJob = z.infer<typeof BroadcastTickJob>;

/** An erasure request (committed in app.erasure_requests first, relayed from app.outbox): its id only. */
export const ErasureJob = z.object({ requestId: z.uuid() });
export type ErasureJob = z.infer<typeof ErasureJob>;

/** "Forget me" asked on the preference page: email the person a link that confirms it. */
export const ForgetConfirmationJob = z.object({ profileId: z.uuid(), expiresAt: z.iso.datetime({ offset: true }) });
export type ForgetConfirmationJob = z.infer<typeof ForgetConfirmationJob>;

/** The retention run (GDPR Art. 5(1)(e)), from its daily job scheduler: the policy is read when it runs. */
export const RetentionJob = z.object({});
export type RetentionJob = z.infer<typeof RetentionJob>;

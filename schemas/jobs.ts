import { z } from 'zod';

/**
 * Payloads of every job, as they cross Redis. They are parsed again when a worker takes a job
 * (engine/queues/worker.ts): Redis is a boundary like any other.
 */

/** A tracking event accepted by the API, waiting for the events worker. */
export const IngestEventJob = z.object({
  /** The source whose write key authenticated the event (invariant 3: every datum knows its source). */
  sourceId: z.uuid(),
  /** When the API accepted it (ISO 8601). */
  receivedAt: z.iso.datetime({ offset: true }),
  /** The Segment-format event, already validated by the API. */
  event: z.record(z.string(), z.unknown()),
});
export type IngestEventJob = z.infer<typeof IngestEventJob>;

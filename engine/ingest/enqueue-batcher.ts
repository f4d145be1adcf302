import type { AcceptedEvent } from '../../schemas/segment';
import type { Queues } from '../queues/producer';
import { MicroBatcher, type MicroBatchOptions } from '../runtime/micro-batcher';

/** Events a job carries at most; also how many waiting events start a flush. */
const MAX_EVENTS_PER_JOB = 500;

/** Cuts the events gathered in one flush into jobs of at most `size`. */
function chunks(events: readonly AcceptedEvent[], size: number): AcceptedEvent[][] {
  const jobs: AcceptedEvent[][] = [];
  for (let i = 0; i < events.length; i += size) jobs.push(events.slice(i, i + size));
  return jobs;
}

/**
 * The tracking API's events, gathered from concurrent requests into jobs of up to 500 and added in
 * one pipelined round trip (engine/runtime/micro-batcher.ts): a request answers 2xx only after Redis
 * acknowledged its events, and Redis being down reaches every request of that flush.
 */
export class EnqueueBatcher extends MicroBatcher<AcceptedEvent> {
  constructor(queues: Queues, options: MicroBatchOptions = { maxItems: MAX_EVENTS_PER_JOB, maxDelayMs: 2 }) {
    super(async (events) => {
      if (events.length === 0) return;
      const jobs = chunks(events, options.maxItems).map((job) => ({ payload: { events: job } }));
      await queues.enqueueBulk('events', 'ingest', jobs, { prevalidated: true });
    }, options);
  }
}

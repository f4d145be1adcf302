import type { AcceptedEvent } from '../../schemas/segment';
import type { Queues } from '../queues/producer';

export interface BatcherOptions {
  /** Flush when this many events are waiting… */
  readonly maxEvents: number;
  /** …or this long after the first one arrived. */
  readonly maxDelayMs: number;
}

interface Waiting {
  readonly events: AcceptedEvent[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Gathers the events of concurrent requests into jobs of up to `maxEvents` and adds them in one
 * pipelined round trip, so throughput is not bound by one Redis round trip per event. Each request
 * waits for the flush that carries its events: it answers 2xx only after Redis acknowledged them,
 * and an error (Redis down) reaches every request of that flush.
 */
export class EnqueueBatcher {
  private waiting: Waiting[] = [];
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly queues: Queues,
    private readonly options: BatcherOptions = { maxEvents: 500, maxDelayMs: 2 },
  ) {}

  submit(events: AcceptedEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ events, resolve, reject });
      this.count += events.length;
      if (this.count >= this.options.maxEvents) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.maxDelayMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const waiting = this.waiting;
    this.waiting = [];
    this.count = 0;
    if (waiting.length === 0) return;
    const jobs: AcceptedEvent[][] = [[]];
    for (const w of waiting) {
      for (const event of w.events) {
        let current = jobs[jobs.length - 1] as AcceptedEvent[];
        if (current.length >= this.options.maxEvents) {
          current = [];
          jobs.push(current);
        }
        current.push(event);
      }
    }
    const done = this.queues
      .enqueueBulk(
        'events',
        'ingest',
        jobs.filter((events) => events.length > 0).map((events) => ({ payload: { events } })),
        { prevalidated: true },
      )
      .then(
        () => {
          for (const w of waiting) w.resolve();
        },
        (err: unknown) => {
          for (const w of waiting) w.reject(err);
        },
      );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /** Flushes what is waiting and waits for every flush under way (shutdown). */
  async drain(): Promise<void> {
    this.flush();
    await Promise.all([...this.inFlight]);
  }
}

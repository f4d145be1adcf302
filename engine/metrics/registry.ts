import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from '../log/logger';
import type { Queues } from '../queues/producer';

/** The depth states an operator alerts on; completed/failed totals are in the admin API. */
const DEPTH_STATES = ['wait', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'] as const;

export interface Metrics {
  readonly registry: Registry;
  readonly httpErrors: Counter<'code'>;
  /** Events offered to the tracking API, by endpoint and outcome (accepted, rejected, unavailable). */
  readonly ingestEvents: Counter<'endpoint' | 'outcome'>;
  /** Pixel requests that stored nothing, by reason (the pixel itself always answers the GIF). */
  readonly pixelRejected: Counter<'reason'>;
  /** Public requests refused with 429, by the bucket that ran dry (ip, write_key) and route kind (api, pixel). */
  readonly httpRateLimited: Counter<'scope' | 'route'>;
  /** Events the events worker processed, by outcome (stored, duplicate, rejected). */
  readonly eventsProcessed: Counter<'outcome'>;
  /** Seconds from the API accepting an event to the events worker committing its batch. */
  readonly eventProcessingSeconds: Histogram;
  /** HTTP requests received and not yet answered (what a shutdown waits for). */
  readonly httpInFlight: Gauge;
  /** Campaign send jobs the email workers ran, by outcome (engine/email/send-outcome.ts, or retry). */
  readonly emailSends: Counter<'outcome'>;
}

/** The outcomes of consentflow_email_sends_total: a send's end state, deferred, or retry (a transient failure). */
export const EMAIL_SEND_OUTCOMES = ['sent', 'skipped', 'failed', 'cancelled', 'deferred', 'retry'] as const;

/**
 * One registry per process (not prom-client's global one), so tests can build several engines in one
 * process. Queue depths are read from Redis at scrape time, never cached.
 */
export interface MetricSources {
  /** Erasure requests past their deadline and not completed (GDPR Art. 12(3): one month at most). */
  readonly overdueErasures: () => Promise<number>;
  /** Erasure requests not completed yet, within their deadline or not. */
  readonly openErasures: () => Promise<number>;
}

export function createMetrics(queues: Queues | undefined, log: Logger, sources?: MetricSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'consentflow_' });

  const httpErrors = new Counter({
    name: 'consentflow_http_errors_total',
    help: 'HTTP error responses by error code',
    labelNames: ['code'] as const,
    registers: [registry],
  });

  const ingestEvents = new Counter({
    name: 'consentflow_ingest_events_total',
    help: 'Events offered to the tracking API, by endpoint and outcome',
    labelNames: ['endpoint', 'outcome'] as const,
    registers: [registry],
  });
  const pixelRejected = new Counter({
    name: 'consentflow_pixel_rejected_total',
    help: 'Pixel requests that stored nothing, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const httpRateLimited = new Counter({
    name: 'consentflow_http_rate_limited_total',
    help: 'Public requests refused with 429, by scope (ip, write_key) and route kind (api, pixel)',
    labelNames: ['scope', 'route'] as const,
    registers: [registry],
  });
  const eventsProcessed = new Counter({
    name: 'consentflow_events_processed_total',
    help: 'Events handled by the events worker, by outcome',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });

  // From a few milliseconds (a quiet engine) to minutes (a backlog): an alert on the p99 says the
  // events workers fall behind before the queue depth does.
  const eventProcessingSeconds = new Histogram({
    name: 'consentflow_event_processing_seconds',
    help: 'Seconds from the API accepting an event to the events worker committing its batch',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });

  const emailSends = new Counter({
    name: 'consentflow_email_sends_total',
    help: 'Campaign send jobs run by the email workers, by outcome (sent, skipped, failed, cancelled, deferred, retry)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });

  const httpInFlight = new Gauge({
    name: 'consentflow_http_requests_in_flight',
    help: 'HTTP requests received and not yet answered',
    registers: [registry],
  });

  if (queues) {
    // prom-client collects all metrics of a scrape at once: both gauges share one read of Redis.
    let scrape: Promise<Awaited<ReturnType<Queues['counts']>> | undefined> | undefined;
    const readDepths = () => {
      if (!scrape) {
        const current = queues.counts().catch((err: Error) => {
          log.warn({ err: { name: err.name, message: err.message } }, 'could not read queue depths');
          return undefined;
        });
        scrape = current;
        void current.finally(() => {
          if (scrape === current) scrape = undefined;
        });
      }
      return scrape;
    };
    new Gauge({
      name: 'consentflow_queue_jobs',
      help: 'Jobs per queue and state, read from Redis at scrape time',
      labelNames: ['queue', 'state'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const counts = await readDepths();
        for (const [queue, byState] of Object.entries(counts ?? {})) {
          for (const state of DEPTH_STATES) this.set({ queue, state }, byState[state] ?? 0);
        }
      },
    });
    new Gauge({
      name: 'consentflow_queue_scrape_success',
      help: '1 if queue depths could be read from Redis at this scrape, 0 if not',
      registers: [registry],
      async collect() {
        this.set((await readDepths()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'consentflow_queue_oldest_waiting_seconds',
      help: 'Age of the oldest job waiting in each queue (since it was due), read from Redis at scrape time; 0 when none waits',
      labelNames: ['queue'] as const,
      registers: [registry],
      async collect() {
        this.reset();
        const ages = await queues.oldestWaitingAgesMs().catch((err: Error) => {
          log.warn({ err: { name: err.name, message: err.message } }, 'could not read queue ages');
          return undefined;
        });
        for (const [queue, ms] of Object.entries(ages ?? {})) this.set({ queue }, ms / 1_000);
      },
    });
  }
  if (sources) {
    new Gauge({
      name: 'consentflow_erasure_requests_overdue',
      help: 'Erasure requests past their deadline (ERASURE_DEADLINE_DAYS) and not completed: alert when above 0',
      registers: [registry],
      async collect() {
        this.set(await sources.overdueErasures().catch(() => -1));
      },
    });
    new Gauge({
      name: 'consentflow_erasure_requests_open',
      help: 'Erasure requests not completed yet (-1: could not be read)',
      registers: [registry],
      async collect() {
        this.set(await sources.openErasures().catch(() => -1));
      },
    });
  }
  return { registry, httpErrors, ingestEvents, pixelRejected, httpRateLimited, eventsProcessed, eventProcessingSeconds, httpInFlight, emailSends };
}

import type { FastifyInstance, FastifyReply } from 'fastify';
import { AnonymousBatch, CountedName } from '../../../schemas/kit';
import type { EventType } from '../../db/types';
import { AppError } from '../../errors';
import type { SourceCache } from '../../ingest/source-cache';
import { describeZodError, sendError } from '../errors';
import { publicLimitsOf } from '../public-limits';
import { CountBatcher, type CountedEvent } from './anonymous-counts';
import { TRANSPARENT_GIF } from './pixel';
import { authenticate, objectBody, type TrackingDeps } from './tracking';

/**
 * Page views and events of a visitor who has not consented to analytics (or whose browser sends
 * Global Privacy Control): the website kit sends them without any identifier, and they only add to
 * the anonymous count of their day, source, type and name (`app.event_counts`), as the events worker
 * does with an event whose person may not be linked (GDPR Art. 5(1)(c), 25(2)). The Segment routes
 * need an identifier, so these have their own: `POST /v1/anonymous` and, for pages without
 * JavaScript, the `<noscript>` pixel `GET /v1/anonymous.gif`.
 */

const perServer = new WeakMap<SourceCache, CountBatcher>();

/** One batcher per HTTP server (keyed like the rate limits), shared by the JSON route and the pixel. */
function countsOf(deps: TrackingDeps): CountBatcher {
  let counts = perServer.get(deps.sources);
  if (!counts) {
    counts = new CountBatcher(deps.databases.db);
    perServer.set(deps.sources, counts);
  }
  return counts;
}

async function count(deps: TrackingDeps, events: CountedEvent[]): Promise<void> {
  try {
    await countsOf(deps).submit(events);
  } catch (err) {
    throw new AppError('UNAVAILABLE', 'the event counts could not be written; nothing was counted, retry later', { cause: err });
  }
}

/** `POST /v1/anonymous`, inside the `/v1` scope: its rate limit, CORS allow-list and text/plain parser apply. */
export async function anonymousRoutes(app: FastifyInstance, deps: TrackingDeps): Promise<void> {
  app.addHook('onClose', async () => {
    await countsOf(deps).drain().catch(() => undefined);
  });
  app.post('/anonymous', { bodyLimit: 64 * 1024 }, async (request, reply) => {
    const body = objectBody(request.body);
    const sourceId = await authenticate(deps, request, reply, body.writeKey);
    if (!sourceId) return reply;
    const parsed = AnonymousBatch.safeParse(body);
    if (!parsed.success) {
      deps.metrics.ingestEvents.inc({ endpoint: 'anonymous', outcome: 'rejected' });
      return sendError(reply, 'VALIDATION_FAILED', describeZodError(parsed.error), deps.metrics);
    }
    // The receive time only: the count keeps the day, and a client's clock could name any day.
    const at = new Date();
    await count(
      deps,
      parsed.data.batch.map((e) => ({ sourceId, type: e.type, name: e.type === 'track' ? e.event : (e.name ?? ''), at })),
    );
    deps.metrics.ingestEvents.inc({ endpoint: 'anonymous', outcome: 'accepted' }, parsed.data.batch.length);
    return { success: true };
  });
}

function sendGif(reply: FastifyReply, retryAfter = 0): FastifyReply {
  if (retryAfter > 0) reply.code(429).header('retry-after', String(retryAfter));
  return reply
    .header('content-type', 'image/gif')
    .header('cache-control', 'no-cache, no-store, must-revalidate, private')
    .header('expires', '0')
    .send(TRANSPARENT_GIF);
}

/**
 * `GET /v1/anonymous.gif?wk=KEY[&t=page|track][&n=NAME]`: the `<noscript>` alternative to the
 * script. Like every pixel it answers the GIF whatever happens (a page never shows a broken image)
 * and counts what it refused in `consentflow_pixel_rejected_total{reason}`; it carries no identifier,
 * so it needs no consent. Registered outside the `/v1` scope, whose limits answer JSON.
 */
export async function anonymousPixelRoutes(app: FastifyInstance, deps: TrackingDeps): Promise<void> {
  const limits = publicLimitsOf(deps);
  app.get<{ Querystring: Record<string, string | string[] | undefined> }>('/v1/anonymous.gif', async (request, reply) => {
    const wait = limits.ip(request, 'pixel');
    const reject = (reason: string, retryAfter = 0) => {
      deps.metrics.pixelRejected.inc({ reason });
      return sendGif(reply, retryAfter);
    };
    if (wait > 0) return reject('rate_limited', wait);
    const first = (name: string): string | undefined => {
      const value = request.query[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const writeKey = first('wk');
    const t = first('t') ?? 'page';
    const type: EventType | undefined = t === 'page' || t === 'track' ? t : undefined;
    const name = first('n') ?? '';
    if (!writeKey) return reject('missing_write_key');
    if (!type) return reject('unknown_type');
    if (!CountedName.safeParse(name).success || (type === 'track' && name === '')) {
      return reject('invalid_event');
    }
    let sourceId: string | undefined;
    try {
      sourceId = await deps.sources.sourceIdFor(writeKey);
    } catch {
      return reject('unavailable');
    }
    if (!sourceId) return reject('unknown_write_key');
    const sourceWait = limits.source(sourceId, 'pixel');
    if (sourceWait > 0) return reject('rate_limited', sourceWait);
    // An image answers the same whatever happens next: it does not wait for the write.
    countsOf(deps)
      .submit([{ sourceId, type, name, at: new Date() }])
      .then(
        () => deps.metrics.ingestEvents.inc({ endpoint: 'anonymous_pixel', outcome: 'accepted' }),
        () => deps.metrics.pixelRejected.inc({ reason: 'unavailable' }),
      );
    return sendGif(reply);
  });
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EVENT_TYPES, type EventType } from '../../../schemas/segment';
import { decodePixelData, firstValue, type PixelForm, SEGMENT_FORM, SIGNAL_DNT, SIGNAL_GPC, SIMPLE_FORM } from '../../ingest/pixel-event';
import { PixelIntake } from '../../ingest/pixel-intake';
import { PixelSink, type PixelTally } from '../../ingest/pixel-sink';
import { queueSealingKey } from '../../queues/sealing';
import { publicLimitsOf } from '../public-limits';
import type { TrackingDeps } from './tracking';

/** The 43-byte transparent 1×1 GIF89a every pixel request gets. */
/** The tracking pixels' paths: the simple form, and Segment's pixel API (`/v1/pixel/:type?data=`). */
const SIMPLE_PIXEL_PATH = '/t.gif';
const SEGMENT_PIXEL_PREFIX = '/v1/pixel/';

/** Whether a raw request URL is a tracking pixel's (the server gives those no per-request logger). */
export function isTrackingPixel(url: string | undefined): boolean {
  return url !== undefined && (url.startsWith(SIMPLE_PIXEL_PATH) || url.startsWith(SEGMENT_PIXEL_PREFIX));
}

export const TRANSPARENT_GIF = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

/** The GIF, also with a 429 (and its Retry-After): a page never shows a broken image. */
function sendGif(reply: FastifyReply, retryAfter = 0): FastifyReply {
  if (retryAfter > 0) reply.code(429).header('retry-after', String(retryAfter));
  else reply.code(200);
  return reply
    .header('content-type', 'image/gif')
    .header('cache-control', 'no-cache, no-store, must-revalidate, private')
    .header('pragma', 'no-cache')
    .header('expires', '0')
    .send(TRANSPARENT_GIF);
}

export interface PixelDeps extends TrackingDeps {
  readonly pixels: PixelIntake;
}

/**
 * The pixel intake of one HTTP server: its thread writes with the server's queue prefix and sealing
 * key, and while it is gone the server's own batcher takes the pixels. Outcomes reach the metrics.
 */
export function createPixelIntake(deps: TrackingDeps): PixelIntake {
  const report = (tally: PixelTally) => {
    if (tally.accepted > 0) deps.metrics.ingestEvents.inc({ endpoint: 'pixel', outcome: 'accepted' }, tally.accepted);
    for (const [reason, n] of Object.entries(tally.refused)) if (n) deps.metrics.pixelRejected.inc({ reason }, n);
  };
  return new PixelIntake({
    thread: { redis: deps.redisEndpoint, prefix: deps.queues.prefix, sealingKey: queueSealingKey(deps.keys.master), logLevel: deps.config.logLevel },
    inline: new PixelSink(deps.batcher, report),
    report,
    log: deps.log,
  });
}

/** What the request itself tells about the event, as the intake thread takes it (tracking-context's requestFacts, unparsed). */
function signalsOf(request: FastifyRequest): number {
  return (request.headers['sec-gpc'] === '1' ? SIGNAL_GPC : 0) | (request.headers.dnt === '1' ? SIGNAL_DNT : 0);
}

/** The query string of a request, without the `?`. */
function queryString(url: string): string {
  const at = url.indexOf('?');
  return at < 0 ? '' : url.slice(at + 1);
}

/**
 * Tracking pixels. An image request cannot show an error, so every answer is the GIF; what was
 * rejected and why is counted in `consentflow_pixel_rejected_total{reason}`.
 *
 * The HTTP thread decides only what changes the answer or must be refused before anything is
 * queued (the address's and the source's rate limits, the type, the write key) and answers; the
 * event itself is checked, stamped and enqueued by the pixel intake thread (engine/ingest/
 * pixel-intake.ts). So the pixel does not wait for Redis: an image answers the same whatever happens
 * next, and a failed enqueue is counted afterwards. (The JSON API, whose 2xx promises acceptance,
 * does wait.)
 */
export async function pixelRoutes(app: FastifyInstance, deps: PixelDeps): Promise<void> {
  const limits = publicLimitsOf(deps);
  const refuse = (reply: FastifyReply, reason: string, retryAfter = 0): undefined => {
    deps.metrics.pixelRejected.inc({ reason });
    sendGif(reply, retryAfter);
    return undefined;
  };
  const handOn = (request: FastifyRequest, reply: FastifyReply, sourceId: string, form: PixelForm, query: string, type: EventType, receivedAtMs: number): undefined => {
    const wait = limits.source(sourceId, 'pixel');
    if (wait > 0) return refuse(reply, 'rate_limited', wait);
    deps.pixels.submit([form, sourceId, query, type, request.ip, signalsOf(request), receivedAtMs]);
    sendGif(reply);
    return undefined;
  };
  // Answered at once while the write key is in the source cache (nearly always): fastify then wants
  // undefined back. Only a cache miss waits, and returns the promise of the answered reply.
  const take = (request: FastifyRequest, reply: FastifyReply, form: PixelForm, query: string, type: string, writeKey: unknown): Promise<FastifyReply> | undefined => {
    if (!(EVENT_TYPES as readonly string[]).includes(type)) return refuse(reply, 'unknown_type');
    if (typeof writeKey !== 'string' || writeKey.length === 0) return refuse(reply, 'missing_write_key');
    const receivedAtMs = Date.now();
    const cached = deps.sources.cachedSourceId(writeKey);
    if (cached === null) return refuse(reply, 'unknown_write_key');
    if (cached !== undefined) return handOn(request, reply, cached, form, query, type as EventType, receivedAtMs);
    return deps.sources.sourceIdFor(writeKey).then(
      (sourceId) => {
        if (sourceId) handOn(request, reply, sourceId, form, query, type as EventType, receivedAtMs);
        else refuse(reply, 'unknown_write_key');
        return reply;
      },
      () => {
        refuse(reply, 'unavailable');
        return reply;
      },
    );
  };
  // The address is limited before anything is decoded or looked up: an unknown write key costs a
  // flooder its address's tokens, and the engine a Map look-up.
  const limited = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const wait = limits.ip(request, 'pixel');
    if (wait === 0) return false;
    refuse(reply, 'rate_limited', wait);
    return true;
  };

  app.get<{ Params: { type: string }; Querystring: { data?: string } }>(`${SEGMENT_PIXEL_PREFIX}:type`, (request, reply) => {
    if (limited(request, reply)) return undefined;
    // Decoded here for its write key; the intake thread decodes it again to check the event.
    const event = decodePixelData(typeof request.query.data === 'string' ? request.query.data : undefined);
    if (!event) return refuse(reply, 'malformed_data');
    return take(request, reply, SEGMENT_FORM, queryString(request.url), request.params.type, event.writeKey);
  });

  app.get<{ Querystring: Record<string, string | string[] | undefined> }>(SIMPLE_PIXEL_PATH, (request, reply) => {
    if (limited(request, reply)) return undefined;
    const query = request.query ?? {};
    return take(request, reply, SIMPLE_FORM, queryString(request.url), firstValue(query.t) ?? 'page', firstValue(query.wk));
  });
}

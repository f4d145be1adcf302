import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EVENT_TYPES, type EventType } from '../../../schemas/segment';
import { type Checked, checkEvent } from '../../ingest/validate';
import { checkFormEvent, type FormEvent } from '../../ingest/validate-form';
import { publicLimitsOf } from '../public-limits';
import { acceptedEvent, requestFacts } from './tracking-context';
import type { TrackingDeps } from './tracking';

/** The 43-byte transparent 1×1 GIF89a every pixel request gets. */
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

type Outcome = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly retryAfter?: number };

/** Query parameters of the hand-written form, `/t.gif?wk=KEY&t=page&aid=…` (see the README). */
function simpleFormEvent(query: Record<string, string | undefined>): { writeKey?: string; type: string; event: FormEvent } {
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(query)) {
    if (key.startsWith('p.') && value !== undefined) properties[key.slice(2)] = value;
  }
  if (query.url !== undefined) properties.url = query.url;
  if (query.ref !== undefined) properties.referrer = query.ref;
  if (query.title !== undefined) properties.title = query.title;
  const event: FormEvent = { properties };
  if (query.aid !== undefined) event.anonymousId = query.aid;
  if (query.uid !== undefined) event.userId = query.uid;
  if (query.e !== undefined) event.event = query.e;
  if (query.mid !== undefined) event.messageId = query.mid;
  if (query.ts !== undefined) event.timestamp = query.ts;
  return { writeKey: query.wk, type: query.t ?? 'page', event };
}

function decodeData(data: string | undefined): Record<string, unknown> | undefined {
  if (!data) return undefined;
  try {
    // Segment's pixel format: base64 (either alphabet) of the JSON event, writeKey inside.
    const parsed: unknown = JSON.parse(Buffer.from(data, data.includes('-') || data.includes('_') ? 'base64url' : 'base64').toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The check for each form: the general one for Segment's JSON pixel, the fast one for `/t.gif`'s flat strings. */
type Check = (receivedAt: Date) => Checked;

async function accept(deps: TrackingDeps, request: FastifyRequest, type: string, writeKey: unknown, check: Check | undefined): Promise<Outcome> {
  if (!check) return { ok: false, reason: 'malformed_data' };
  if (!(EVENT_TYPES as readonly string[]).includes(type)) return { ok: false, reason: 'unknown_type' };
  if (typeof writeKey !== 'string' || writeKey.length === 0) return { ok: false, reason: 'missing_write_key' };
  let sourceId: string | undefined;
  try {
    sourceId = await deps.sources.sourceIdFor(writeKey);
  } catch {
    return { ok: false, reason: 'unavailable' };
  }
  if (!sourceId) return { ok: false, reason: 'unknown_write_key' };
  const wait = publicLimitsOf(deps).source(sourceId, 'pixel');
  if (wait > 0) return { ok: false, reason: 'rate_limited', retryAfter: wait };
  const receivedAt = new Date();
  const checked = check(receivedAt);
  if (!checked.ok) return { ok: false, reason: checked.code === 'PAYLOAD_TOO_LARGE' ? 'too_large' : 'invalid_event' };
  const accepted = acceptedEvent(sourceId, checked, receivedAt, requestFacts(request));
  // An image answers the same whatever happens next, so the pixel does not wait for Redis: it
  // answers at once and counts a failed enqueue afterwards. (The JSON API, whose 2xx promises
  // acceptance, does wait.)
  deps.batcher.submit([accepted]).then(
    () => deps.metrics.ingestEvents.inc({ endpoint: 'pixel', outcome: 'accepted' }),
    () => deps.metrics.pixelRejected.inc({ reason: 'unavailable' }),
  );
  return { ok: true };
}

/**
 * Tracking pixels. An image request cannot show an error, so every answer is the GIF; what was
 * rejected and why is counted in `consentflow_pixel_rejected_total{reason}`.
 */
export async function pixelRoutes(app: FastifyInstance, deps: TrackingDeps): Promise<void> {
  const limits = publicLimitsOf(deps);
  const respond = async (request: FastifyRequest, reply: FastifyReply, outcome: Promise<Outcome>) => {
    const result = await outcome;
    if (result.ok) return sendGif(reply);
    deps.metrics.pixelRejected.inc({ reason: result.reason });
    return sendGif(reply, result.retryAfter);
  };
  // The address is limited before anything is decoded or looked up: an unknown write key costs a
  // flooder its address's tokens, and the engine a Map look-up. A limited request is answered here;
  // the (synchronous) handler then returns undefined, as fastify asks of one that sent its reply.
  const limited = (request: FastifyRequest, reply: FastifyReply): boolean => {
    const wait = limits.ip(request, 'pixel');
    if (wait === 0) return false;
    deps.metrics.pixelRejected.inc({ reason: 'rate_limited' });
    sendGif(reply, wait);
    return true;
  };

  app.get<{ Params: { type: string }; Querystring: { data?: string } }>('/v1/pixel/:type', (request, reply) => {
    if (limited(request, reply)) return undefined;
    const event = decodeData(typeof request.query.data === 'string' ? request.query.data : undefined);
    const type = request.params.type as EventType;
    const check = event && ((receivedAt: Date) => checkEvent(event, type, receivedAt, undefined));
    return respond(request, reply, accept(deps, request, type, event?.writeKey, check));
  });

  app.get<{ Querystring: Record<string, string | undefined> }>('/t.gif', (request, reply) => {
    if (limited(request, reply)) return undefined;
    const query = Object.fromEntries(
      Object.entries(request.query ?? {}).map(([k, v]) => [k, Array.isArray(v) ? String(v[0]) : v]),
    ) as Record<string, string | undefined>;
    const { writeKey, type, event } = simpleFormEvent(query);
    return respond(request, reply, accept(deps, request, type, writeKey, (receivedAt) => checkFormEvent(event, type as EventType, receivedAt)));
  });
}

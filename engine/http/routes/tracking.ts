import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BatchBody, EVENT_TYPES, type AcceptedEvent, type EventType } from '../../../schemas/segment';
import { AppError } from '../../errors';
import type { EnqueueBatcher } from '../../ingest/enqueue-batcher';
import type { SourceCache } from '../../ingest/source-cache';
import { MAX_BATCH_BYTES, checkEvent } from '../../ingest/validate';
import type { HttpDeps } from '../deps';
import { admitOrigin, PREFLIGHT_HEADERS, preflightRefusal } from '../cors';
import { describeZodError, sendError } from '../errors';
import { publicLimitsOf, sendRateLimited } from '../public-limits';
import { changeFromEvent } from '../../consent/requests';
import { acceptedEvent, requestFacts, writeKeyOf } from './tracking-context';

export interface TrackingDeps extends HttpDeps {
  readonly sources: SourceCache;
  readonly batcher: EnqueueBatcher;
}

interface Rejected {
  index: number;
  code: string;
  message: string;
}

/**
 * Resolves the source or answers 401; a PostgreSQL outage is a 503, never a false 401. Then a
 * browser's origin must be one the source allows (403), and the source must be within its rate
 * limit (429). Returns the source id when the request may go on.
 */
export async function authenticate(deps: TrackingDeps, request: FastifyRequest, reply: FastifyReply, bodyKey: unknown): Promise<string | undefined> {
  const writeKey = writeKeyOf(request, bodyKey);
  if (!writeKey) {
    sendError(reply, 'UNAUTHORIZED', 'send the source write key as the HTTP Basic user name (empty password) or as writeKey in the body', deps.metrics);
    return undefined;
  }
  const source = await deps.sources.sourceFor(writeKey);
  if (!source) {
    sendError(reply, 'UNAUTHORIZED', 'unknown write key (create a source with `consentflow sources add NAME`)', deps.metrics);
    return undefined;
  }
  if (!admitOrigin(request, reply, source, deps.metrics)) return undefined;
  const wait = publicLimitsOf(deps).source(source.id, 'api');
  if (wait > 0) {
    sendRateLimited(reply, 'write_key', wait, deps.metrics);
    return undefined;
  }
  return source.id;
}

/** Enqueues accepted events; answers 503 if Redis did not acknowledge them (never a false 2xx). */
export async function enqueueAccepted(deps: TrackingDeps, events: AcceptedEvent[]): Promise<void> {
  try {
    await deps.batcher.submit(events);
  } catch (err) {
    // Any failure to enqueue means the events were not accepted: the client must retry.
    throw new AppError('UNAVAILABLE', 'the event queue is unavailable; nothing was accepted, retry later', { cause: err });
  }
}

export function objectBody(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('VALIDATION_FAILED', '(body): expected a JSON object');
  }
  return body as Record<string, unknown>;
}

/**
 * The Segment-compatible tracking API: `/v1/{track,identify,page,screen,group,alias,batch}`.
 * Accepted means enqueued in Redis; the events worker does the rest.
 */
export async function trackingRoutes(app: FastifyInstance, deps: TrackingDeps): Promise<void> {
  // analytics.js sends JSON as text/plain to avoid a CORS preflight.
  app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(Object.assign(new Error('the body is not valid JSON'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400 }), undefined);
    }
  });
  // Before the body is read: a flooding address costs a Map look-up, not a JSON parse. Inherited by
  // the consent routes' child scope. Access-Control-Allow-Origin is set by authenticate(), once the
  // source (and so the origins it allows) is known.
  const limits = publicLimitsOf(deps);
  app.addHook('onRequest', async (request, reply) => {
    reply.header('vary', 'Origin');
    const wait = limits.ip(request, 'api');
    if (wait > 0) return sendRateLimited(reply, 'ip', wait, deps.metrics);
  });
  app.options('/*', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin === undefined) return reply.code(204).header('allow', 'POST, GET, OPTIONS').send();
    if (!(await deps.sources.originAllowedBySome(origin))) return sendError(reply, 'FORBIDDEN', preflightRefusal(origin), deps.metrics);
    return reply.headers({ ...PREFLIGHT_HEADERS, 'access-control-allow-origin': origin }).code(204).send();
  });

  // analytics.js (analytics-next) posts to the one-letter paths: /v1/t, /v1/i, … and /v1/b.
  for (const type of EVENT_TYPES) {
    app.post(`/${type}`, { bodyLimit: MAX_BATCH_BYTES }, (request, reply) => single(type, request, reply));
    app.post(`/${type.charAt(0)}`, { bodyLimit: MAX_BATCH_BYTES }, (request, reply) => single(type, request, reply));
  }
  app.post('/batch', { bodyLimit: MAX_BATCH_BYTES }, (request, reply) => batch(request, reply));
  app.post('/b', { bodyLimit: MAX_BATCH_BYTES }, (request, reply) => batch(request, reply));

  async function single(type: EventType, request: FastifyRequest, reply: FastifyReply) {
    const body = objectBody(request.body);
    const sourceId = await authenticate(deps, request, reply, body.writeKey);
    if (!sourceId) return reply;
    const receivedAt = new Date();
    const checked = checkEvent(body, type, receivedAt, undefined);
    const consent = checked.ok ? changeFromEvent(deps.rules.purposes, checked.event) : undefined;
    if (!checked.ok || !consent?.ok) {
      deps.metrics.ingestEvents.inc({ endpoint: type, outcome: 'rejected' });
      return checked.ok
        ? sendError(reply, 'VALIDATION_FAILED', (consent as { message: string }).message, deps.metrics)
        : sendError(reply, checked.code, checked.message, deps.metrics);
    }
    await enqueueAccepted(deps, [acceptedEvent(sourceId, checked, receivedAt, requestFacts(request), consent.change)]);
    deps.metrics.ingestEvents.inc({ endpoint: type, outcome: 'accepted' });
    return { success: true };
  }

  async function batch(request: FastifyRequest, reply: FastifyReply) {
    const body = objectBody(request.body);
    const sourceId = await authenticate(deps, request, reply, body.writeKey);
    if (!sourceId) return reply;
    const parsed = BatchBody.safeParse(body);
    if (!parsed.success) return sendError(reply, 'VALIDATION_FAILED', describeZodError(parsed.error), deps.metrics);
    const receivedAt = new Date();
    const facts = requestFacts(request);
    const accepted: AcceptedEvent[] = [];
    const rejected: Rejected[] = [];
    parsed.data.batch.forEach((item, index) => {
      const checked = checkEvent(item, undefined, receivedAt, parsed.data.sentAt);
      if (!checked.ok) {
        rejected.push({ index, code: checked.code, message: checked.message });
        return;
      }
      const consent = changeFromEvent(deps.rules.purposes, checked.event);
      if (!consent.ok) {
        rejected.push({ index, code: 'VALIDATION_FAILED', message: consent.message });
        return;
      }
      accepted.push(acceptedEvent(sourceId, checked, receivedAt, facts, consent.change));
    });
    if (rejected.length > 0) deps.metrics.ingestEvents.inc({ endpoint: 'batch', outcome: 'rejected' }, rejected.length);
    if (accepted.length === 0) {
      const first = rejected[0];
      return reply.code(400).send({
        error: { code: 'VALIDATION_FAILED', message: `no event was accepted; batch.${first?.index}: ${first?.message}` },
        rejected,
      });
    }
    await enqueueAccepted(deps, accepted);
    deps.metrics.ingestEvents.inc({ endpoint: 'batch', outcome: 'accepted' }, accepted.length);
    return rejected.length > 0 ? { success: true, accepted: accepted.length, rejected } : { success: true };
  }
}


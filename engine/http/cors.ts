import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ActiveSource } from '../ingest/sources';
import type { Metrics } from '../metrics/registry';
import { sendError } from './errors';

/**
 * CORS on the write-key routes (OWASP ASVS 5.0 V3.4.2): the Origin of a browser call is echoed in
 * Access-Control-Allow-Origin only if the source lists it (or lists `*`). Browsers send Origin in
 * its serialized form (RFC 6454 §6.1) and the CLI stores origins normalized the same way, so an
 * exact comparison suffices. A call without Origin comes from a server SDK, where CORS means nothing.
 */
export function originAllowed(source: ActiveSource, origin: string): boolean {
  return source.allowedOrigins.includes(origin) || source.allowedOrigins.includes('*');
}

/** What the browser may send and read on the tracking API. */
export const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': 'POST, GET, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type',
  'access-control-max-age': '86400',
} as const;

/** An origin as shown in a message: the header is the client's, so it is bounded and printable. */
function shown(origin: string): string {
  return origin.replace(/[^\x21-\x7e]/g, '?').slice(0, 200);
}

/**
 * Checks the browser's origin against the source: true (and the CORS answer headers set) when the
 * call may go on, false when a 403 was sent (nothing accepted, no Access-Control-Allow-Origin).
 */
export function admitOrigin(request: FastifyRequest, reply: FastifyReply, source: ActiveSource, metrics: Metrics): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (!originAllowed(source, origin)) {
    sendError(
      reply,
      'FORBIDDEN',
      `browser calls from origin '${shown(origin)}' are not allowed for this write key; allow it with \`consentflow sources origins ${source.id} --add ${shown(origin)}\``,
      metrics,
    );
    return false;
  }
  reply.header('access-control-allow-origin', origin);
  // Lets the page's script read when to retry after a 429.
  reply.header('access-control-expose-headers', 'retry-after');
  return true;
}

/** The preflight's refusal: no write key comes with it, so it asks whether any source allows the origin. */
export function preflightRefusal(origin: string): string {
  return `no source allows browser calls from origin '${shown(origin)}'; allow it with \`consentflow sources origins SOURCE_ID --add ${shown(origin)}\``;
}

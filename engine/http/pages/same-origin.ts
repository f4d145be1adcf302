import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { escapeHtml } from './layout';
import { sendPage } from './respond';

/**
 * Cross-site request forgery on the pages' forms (ASVS 5.0 V3.5.1). The pages carry no session: what
 * authorises a change is the signed token in the URL, which a forger would have to know. Still, a
 * POST a browser sends from another site is refused before anything is read or changed:
 *
 * - `Sec-Fetch-Site: cross-site` or `same-site` (Fetch Metadata, sent by every current browser, and
 *   a header no page can set), or
 * - without Fetch Metadata, an `Origin` header (sent by browsers with every POST) whose origin is not
 *   PUBLIC_URL's.
 *
 * `Sec-Fetch-Site: same-origin` settles it: the browser itself says the form was on our page. The
 * Origin check alone refused real browsers' own forms: under `Referrer-Policy: no-referrer` a
 * browser sends a same-origin POST with `Origin: null` (Fetch, "serializing a request origin"),
 * which is why the pages now send `same-origin` (respond.ts).
 *
 * A POST with neither still works: that is how mail providers' servers send the RFC 8058 one-click
 * unsubscribe (no browser, no Origin), and how `curl` or a test client posts. GETs never change
 * anything (ASVS V3.5.3), so they are not guarded: the pages' GETs only show, and the tracking GETs
 * (pixels, opens, clicks) record events by design, never consent or erasure.
 */

/** Why the request must be refused, or undefined when it may go on. Never echoes the header. */
export function crossSiteReason(request: FastifyRequest, publicOrigin: string): string | undefined {
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return 'your browser says it was sent from another website';
  if (site === 'same-origin') return undefined;
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  let sent: string;
  try {
    sent = new URL(origin).origin;
  } catch {
    return 'it was sent from a page whose origin cannot be verified';
  }
  return sent === publicOrigin ? undefined : 'it was sent from another website';
}

/** The origin (scheme, host, port) of PUBLIC_URL, as browsers write it in the Origin header. */
export function originOf(publicUrl: string): string {
  return new URL(publicUrl).origin;
}

export function refuseCrossSite(reply: FastifyReply, reason: string): FastifyReply {
  return sendPage(
    reply,
    403,
    'en',
    'This form was sent from another website',
    `<p class="notice error">Nothing was changed: ${escapeHtml(reason)}. A page of another website may have tried to act in your name.</p>
<p>If it was you, open the link from our email again and use the form on that page.</p>`,
  );
}

/** Guards every POST of a scope of pages (its forms), before the body is read. */
export function guardFormPosts(app: FastifyInstance, publicUrl: string): void {
  const publicOrigin = originOf(publicUrl);
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'POST') return;
    const reason = crossSiteReason(request, publicOrigin);
    if (reason === undefined) return;
    request.log.info({ path: request.routeOptions.url, reason }, 'cross-site form post refused');
    return refuseCrossSite(reply, reason);
  });
}

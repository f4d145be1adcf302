import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendPage } from './respond';
import { fillText, PAGE_STRINGS, pageLanguage } from './strings';

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

/** Why a request must be refused; logged as is, and shown to the person in their language. */
export type CrossSiteReason = 'fetch_metadata_cross_site' | 'unverifiable_origin' | 'other_origin';

const REASON_TEXT = { fetch_metadata_cross_site: 'crossSiteFetchSite', unverifiable_origin: 'crossSiteUnverifiable', other_origin: 'crossSiteOtherOrigin' } as const;

/** Why the request must be refused, or undefined when it may go on. Never echoes the header. */
export function crossSiteReason(request: FastifyRequest, publicOrigin: string): CrossSiteReason | undefined {
  const site = request.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site') return 'fetch_metadata_cross_site';
  if (site === 'same-origin') return undefined;
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  let sent: string;
  try {
    sent = new URL(origin).origin;
  } catch {
    return 'unverifiable_origin';
  }
  return sent === publicOrigin ? undefined : 'other_origin';
}

/** The origin (scheme, host, port) of PUBLIC_URL, as browsers write it in the Origin header. */
export function originOf(publicUrl: string): string {
  return new URL(publicUrl).origin;
}

export function refuseCrossSite(request: FastifyRequest, reply: FastifyReply, reason: CrossSiteReason): FastifyReply {
  const lang = pageLanguage(request);
  const t = PAGE_STRINGS[lang];
  return sendPage(
    reply,
    403,
    lang,
    t.crossSiteTitle,
    `<p class="notice error" role="alert">${fillText(t.crossSiteBody, { reason: t[REASON_TEXT[reason]] })}</p>
<p>${fillText(t.crossSiteAgain, {})}</p>`,
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
    return refuseCrossSite(request, reply, reason);
  });
}

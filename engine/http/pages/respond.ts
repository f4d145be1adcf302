import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { page } from './layout';

/**
 * The security headers of every HTML page (helmet's set, written out: a dozen constant headers do not
 * need a dependency). Pages reached by a signed link carry the token in their URL: no referrer leaves
 * with it for another site, nothing is cached, nothing may frame them (clickjacking a consent form), no script runs,
 * no other site may load them as a resource or hold a window reference to them, and no browser
 * feature they never use can be asked for. Strict-Transport-Security is set for every response when
 * PUBLIC_URL is https (engine/http/security-headers.ts), which knows the configuration.
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  // Not no-referrer: under it browsers send the pages' own form POSTs with `Origin: null`, which the
  // cross-site check (same-origin.ts) cannot tell from a forgery. same-origin sends the page's URL
  // (with its token) to this engine only, which issued it; never to another site.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'permissions-policy':
    'accelerometer=(), autoplay=(), browsing-topics=(), camera=(), display-capture=(), fullscreen=(), geolocation=(), gyroscope=(), ' +
    'magnetometer=(), microphone=(), midi=(), payment=(), publickey-credentials-get=(), screen-wake-lock=(), usb=(), xr-spatial-tracking=()',
  'x-dns-prefetch-control': 'off',
  'x-permitted-cross-domain-policies': 'none',
});

/** A whole page; `body` must already be escaped HTML (layout.ts escapeHtml, the one escaping helper). */
export function sendPage(reply: FastifyReply, status: number, lang: string, title: string, body: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(page(lang, title, body));
}

/** HTML forms post `application/x-www-form-urlencoded`; the body becomes URLSearchParams. */
export function acceptForms(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
    done(null, new URLSearchParams(body as string));
  });
}

export function formValues(request: FastifyRequest, name: string): string[] {
  return request.body instanceof URLSearchParams ? request.body.getAll(name) : [];
}

/** English unless the browser prefers a language the purposes file describes (Polish ships). */
export function preferredLanguage(request: FastifyRequest, available: readonly string[]): string {
  const header = request.headers['accept-language'];
  if (typeof header !== 'string') return 'en';
  const wanted = header
    .split(',')
    .map((part) => {
      const [tag = '', q] = part.trim().split(';q=');
      return { tag: tag.toLowerCase(), q: q === undefined ? 1 : Number(q) || 0 };
    })
    // q=0 means "not acceptable" (RFC 9110 §12.4.2); the sort is stable, so equal q keep their order.
    .filter(({ q }) => q > 0)
    .sort((a, b) => b.q - a.q);
  for (const { tag } of wanted) {
    const match = available.find((lang) => lang.toLowerCase() === tag || lang.toLowerCase() === tag.split('-')[0]);
    if (match) return match;
  }
  return 'en';
}

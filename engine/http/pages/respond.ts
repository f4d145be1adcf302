import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { page } from './layout';

/**
 * Pages reached by a signed link carry the token in their URL: no referrer leaves with it, nothing
 * is cached, nothing may frame them (clickjacking a consent form), no script runs.
 */
export function sendPage(reply: FastifyReply, status: number, lang: string, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .send(page(lang, title, body));
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
    .sort((a, b) => b.q - a.q);
  for (const { tag } of wanted) {
    const match = available.find((lang) => lang.toLowerCase() === tag || lang.toLowerCase() === tag.split('-')[0]);
    if (match) return match;
  }
  return 'en';
}

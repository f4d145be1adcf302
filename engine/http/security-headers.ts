import type { FastifyInstance } from 'fastify';
import type { Config } from '../config';

/** One year (helmet's default); without includeSubDomains: the engine does not own its host's siblings. */
export const HSTS = 'max-age=31536000';

/**
 * Headers every response gets, whatever its route: `X-Content-Type-Options: nosniff`, so that no
 * browser reads a JSON answer (which may echo what a client sent) as HTML or script, and, when
 * PUBLIC_URL is https, `Strict-Transport-Security` (RFC 6797), so a browser that saw the pages once
 * never speaks plain HTTP to them again. HTML pages add their own set (pages/respond.ts).
 *
 * Install it on the root instance before any route or plugin is registered: fastify gives a plugin
 * the hooks its parent had when the plugin was registered, not those added after.
 */
export function installSecurityHeaders(app: FastifyInstance, config: Pick<Config, 'http'>): void {
  const hsts = new URL(config.http.publicUrl).protocol === 'https:' ? HSTS : undefined;
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('x-content-type-options', 'nosniff');
    if (hsts !== undefined) reply.header('strict-transport-security', hsts);
    done(null, payload);
  });
}

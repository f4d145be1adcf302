import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { EnqueueBatcher } from '../ingest/enqueue-batcher';
import { SourceCache } from '../ingest/source-cache';
import { adminLoginRoutes } from './admin/login-routes';
import { adminRoutes } from './admin/routes';
import { AdminRouteTable } from './admin/route-table';
import type { HttpDeps } from './deps';
import { installErrorHandling } from './errors';
import { installSecurityHeaders } from './security-headers';
import { healthRoutes } from './routes/health';
import { metricsRoutes } from './routes/metrics';
import { createPixelIntake, isTrackingPixel, pixelRoutes } from './routes/pixel';
import { batchDeps } from '../runtime/batch';
import { consentRoutes } from './routes/consent';
import { forgetRoutes } from './routes/forget';
import { preferenceRoutes } from './routes/preferences';
import { unsubscribeRoutes } from './routes/unsubscribe';
import { emailTrackingRoutes } from './routes/email-tracking';
import { type TrackingDeps, trackingRoutes } from './routes/tracking';
import { kitRoutes } from './routes/kit';
import { anonymousPixelRoutes } from './routes/anonymous';

/**
 * The HTTP application. Request logs carry the method, the path without its query string (queries
 * can carry PII: `?email=`), the status and the time; never the client's address.
 */
export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ component: 'http' }) as FastifyBaseLogger,
    bodyLimit: deps.config.http.bodyLimit,
    // Fastify's own per-request lines would log the URL with its query; the onResponse hook below does it safely.
    logController: new LogController({ disableRequestLogging: true }),
    // A child logger per request (for its reqId) costs a tracking pixel about a tenth of its CPU
    // (redaction is set up for each child); pixels log nothing per request (they answer the GIF
    // whatever happens), so theirs share the server's logger. Every other route keeps its reqId.
    childLoggerFactory: (logger, bindings, options, rawRequest) => (isTrackingPixel(rawRequest.url) ? logger : logger.child(bindings, options)),
    // fastify accepts a hop count too (proxy-addr semantics); its type does not list it.
    trustProxy: deps.config.http.trustProxy as boolean | string,
    return503OnClosing: true,
    // Signed links carry their token as a path parameter (/p/:token), longer than the default 100.
    routerOptions: { maxParamLength: 4096 },
    forceCloseConnections: 'idle',
  });
  if (deps.config.http.trustProxy === true) {
    // OWASP ASVS 5.0 V4.1.3: only a named proxy's X-Forwarded-For is to be believed.
    deps.log.warn(
      'HTTP_TRUST_PROXY=true believes any client\'s X-Forwarded-For: a client can choose the address its rate limit counts and the /24 stored; set the proxies\' addresses or a hop count instead',
    );
  }
  installErrorHandling(app, deps.metrics, deps.config.http.bodyLimit);
  // Before any register: a plugin inherits only the hooks its parent had when it was registered.
  installSecurityHeaders(app, deps.config);
  // Counted from the moment the headers arrive (before the body), until answered or abandoned.
  app.addHook('onRequest', (_request, _reply, done) => {
    deps.metrics.httpInFlight.inc();
    done();
  });
  app.addHook('onRequestAbort', (_request, done) => {
    deps.metrics.httpInFlight.dec();
    done();
  });
  // Callback-style, as the two above: an async hook costs every request a promise.
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.httpInFlight.dec();
    if (reply.statusCode >= 500 || deps.log.isLevelEnabled('debug')) {
      request.log[reply.statusCode >= 500 ? 'warn' : 'debug'](
        { method: request.method, path: request.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'request',
      );
    }
    done();
  });
  const tracking: TrackingDeps = { ...deps, sources: new SourceCache(deps.databases.db), batcher: new EnqueueBatcher(deps.queues) };
  const pixels = createPixelIntake(tracking);
  // Events accepted but still waiting for their flush must reach Redis before the server closes:
  // the pixels first, as the intake falls back on the batcher.
  app.addHook('onClose', async () => {
    await pixels.close(deps.config.shutdownTimeoutMs).catch(() => undefined);
    await tracking.batcher.drain().catch(() => undefined);
  });
  healthRoutes(app, deps);
  metricsRoutes(app, deps);
  await app.register(
    async (scope) => {
      await trackingRoutes(scope, tracking);
      // Its own child scope, so its form parser stays off the tracking routes; the CORS hook is inherited.
      await scope.register((inner) => consentRoutes(inner, { ...tracking, batch: batchDeps(deps) }));
      // The website kit: cf.js, the consent notice, anonymous counts (rate limit and CORS inherited).
      await scope.register((inner) => kitRoutes(inner, tracking));
    },
    { prefix: '/v1' },
  );
  await app.register((scope) => preferenceRoutes(scope, deps), { prefix: '/p' });
  await app.register((scope) => unsubscribeRoutes(scope, deps), { prefix: '/u' });
  await app.register((scope) => forgetRoutes(scope, deps), { prefix: '/f' });
  await app.register((scope) => emailTrackingRoutes(scope, deps));
  await app.register((scope) => pixelRoutes(scope, { ...tracking, pixels }));
  await app.register((scope) => anonymousPixelRoutes(scope, tracking));
  const adminTable = new AdminRouteTable();
  app.decorate('adminRouteTable', adminTable);
  await app.register((scope) => adminRoutes(scope, deps, adminTable), { prefix: '/admin/v1' });
  await app.register((scope) => adminLoginRoutes(scope, deps), { prefix: '/admin' });
  return app;
}

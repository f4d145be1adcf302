import Fastify, { type FastifyInstance } from 'fastify';
import type { HttpDeps } from './deps';
import { healthRoutes } from './routes/health';
import { metricsRoutes } from './routes/metrics';

/**
 * What a worker process (`consentflow worker`, no API) serves when WORKER_METRICS_PORT is set:
 * `/healthz`, `/readyz` and `/metrics`, nothing else. Its counters (events processed, sends by
 * outcome) live only in its own registry, so without this a Prometheus scrape of the API processes
 * would never see them. No request logging: a scrape every few seconds is not worth a log line.
 */
export async function buildWorkerMetricsServer(deps: Pick<HttpDeps, 'metrics' | 'databases' | 'redis'>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, return503OnClosing: true, forceCloseConnections: 'idle' });
  healthRoutes(app, deps);
  metricsRoutes(app, deps);
  return app;
}

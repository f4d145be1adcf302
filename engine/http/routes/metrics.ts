import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps';

export function metricsRoutes(app: FastifyInstance, deps: Pick<HttpDeps, 'metrics'>): void {
  app.get('/metrics', async (_request, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}

import type { FastifyInstance } from 'fastify';
import { CreateApiKeyBody } from '../../../schemas/api-keys';
import { createApiKey, listApiKeys } from '../../auth/api-keys';
import type { HttpDeps } from '../deps';
import { allowRoles, requireApiKey } from './auth';

/** The admin API base. Later capabilities add their routes here, each with its roles. */
export async function adminRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  requireApiKey(app, deps);

  app.get('/whoami', async (request) => request.apiKey);

  app.get('/keys', { preHandler: allowRoles(deps, 'admin') }, async () => ({ keys: await listApiKeys(deps.databases.db) }));

  app.post('/keys', { preHandler: allowRoles(deps, 'admin') }, async (request, reply) => {
    const body = CreateApiKeyBody.parse(request.body ?? {});
    const created = await createApiKey(deps.databases.db, body);
    request.log.info({ keyId: created.id, role: created.role, by: request.apiKey?.id }, 'API key created');
    return reply.code(201).send(created);
  });

  app.get('/queues', { preHandler: allowRoles(deps, 'operator') }, async () => ({ queues: await deps.queues.counts() }));
}

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiKeyIdParams, ApiKeySummary, CreateApiKeyBody, CreatedApiKey } from '../../../schemas/api-keys';
import { WhoAmI } from '../../../schemas/admin';
import { keyTarget } from '../../audit/targets';
import { createApiKey, listApiKeys, revokeApiKey } from '../../auth/api-keys';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { auditInTransaction } from './audit-hook';
import { noteAudit } from './auth';
import { adminRoute } from './route-table';

/** Admin API keys (role `admin` only: a key that makes keys can make itself anything). */
export function keysRoutes(app: FastifyInstance, deps: HttpDeps): void {
  adminRoute(
    app,
    'GET',
    '/whoami',
    { roles: ['marketer', 'operator', 'privacy_officer', 'admin'], action: 'admin.whoami', summary: 'The key this request authenticated with', response: WhoAmI },
    async (_input, request) => request.apiKey,
  );

  adminRoute(
    app,
    'GET',
    '/keys',
    { roles: ['admin'], action: 'keys.list', summary: 'List API keys (never the keys themselves)', response: z.object({ keys: z.array(ApiKeySummary) }) },
    async () => ({ keys: await listApiKeys(deps.databases.db) }),
  );

  const create = { roles: ['admin'], action: 'keys.create', summary: 'Create an API key, shown once', body: CreateApiKeyBody, response: CreatedApiKey, successStatus: 201 } as const;
  adminRoute(app, 'POST', '/keys', create, async ({ body }, request, reply) => {
    const created = await deps.databases.db.transaction().execute(async (trx) => {
      const key = await createApiKey(trx, body);
      await auditInTransaction(trx, deps, request, 201, { target: keyTarget(key.id), detail: { role: key.role, expiresAt: key.expiresAt } });
      return key;
    });
    return reply.code(201).send(created);
  });

  const revoke = { roles: ['admin'], action: 'keys.revoke', summary: 'Revoke an API key at once', params: ApiKeyIdParams, response: ApiKeySummary } as const;
  adminRoute(app, 'POST', '/keys/:id/revoke', revoke, async ({ params }, request, reply) => {
    noteAudit(request, { target: keyTarget(params.id) });
    const revoked = await deps.databases.db.transaction().execute(async (trx) => {
      const result = await revokeApiKey(trx, params.id);
      if (result) await auditInTransaction(trx, deps, request, 200, { detail: { alreadyRevoked: result.alreadyRevoked } });
      return result;
    });
    if (!revoked) return sendError(reply, 'NOT_FOUND', 'no API key has that id', deps.metrics);
    return revoked.key;
  });
}

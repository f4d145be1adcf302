import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKeySummary } from '../../../schemas/api-keys';
import type { Role } from '../../../schemas/roles';
import { findActiveApiKey } from '../../auth/api-keys';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';

declare module 'fastify' {
  interface FastifyRequest {
    /** The admin API key that authenticated this request (set on every /admin/v1 route). */
    apiKey?: ApiKeySummary;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,200})$/;

/** Bearer API keys on every route of this scope: 401 without a valid one (RFC 6750 §3). */
export function requireApiKey(app: FastifyInstance, deps: HttpDeps): void {
  app.addHook('onRequest', async (request, reply) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    const key = match?.[1] ? await findActiveApiKey(deps.databases.db, match[1]) : undefined;
    if (!key) {
      reply.header('www-authenticate', 'Bearer realm="consentflow-admin"');
      return sendError(reply, 'UNAUTHORIZED', 'send a valid admin API key as `Authorization: Bearer <key>` (create one with `consentflow keys create --role ROLE`)', deps.metrics);
    }
    request.apiKey = key;
  });
}

/** A route's role check: 403 for a valid key of another role. */
export function allowRoles(deps: HttpDeps, ...roles: Role[]) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const role = request.apiKey?.role;
    if (!role || !roles.includes(role)) {
      return sendError(reply, 'FORBIDDEN', `this route needs the role ${roles.join(' or ')}; this key has the role ${role ?? 'none'}`, deps.metrics);
    }
  };
}

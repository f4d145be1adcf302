import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiKeySummary } from '../../../schemas/api-keys';
import type { Role } from '../../../schemas/roles';
import { findActiveApiKey } from '../../auth/api-keys';
import { KeyUseRecorder } from '../../auth/last-use';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { auditAdminResponse, type AuditNote } from './audit-hook';
import type { AdminRouteTable } from './route-table';
import { forgedFormRefusal, keyOfSession, wantsLoginPage } from './session';

declare module 'fastify' {
  interface FastifyRequest {
    /** The admin API key that authenticated this request (set on every /admin/v1 route). */
    apiKey?: ApiKeySummary;
    /** What the handler adds to the request's audit entry: the target, the stated reason. */
    auditNote?: AuditNote;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9_-]{1,200})$/;

/**
 * Every admin route states who may call it and what it is called in the audit log: a route without
 * `config.roles` and `config.action` stops the server from starting, so nothing is reachable by
 * accident (least privilege, OWASP ASVS 5.0 V8.2). The routes are collected for the role test
 * and the OpenAPI document.
 */
export function requireRouteDecisions(app: FastifyInstance, table: AdminRouteTable): void {
  app.addHook('onRoute', (route) => {
    if (route.method === 'HEAD' || (Array.isArray(route.method) && route.method.every((m) => m === 'HEAD'))) return;
    const config = route.config as { roles?: readonly Role[]; action?: string } | undefined;
    if (!config?.roles || config.roles.length === 0 || !config.action) {
      throw new Error(`admin route ${String(route.method)} ${route.url} must declare config.roles and config.action`);
    }
    table.add(route);
  });
}

/**
 * Bearer API keys on every route of this scope: 401 without a valid one (RFC 6750 §3); then the
 * route's roles: 403 for a valid key of another role, recorded in the audit log.
 */
export function requireApiKey(app: FastifyInstance, deps: HttpDeps): void {
  const uses = new KeyUseRecorder(deps.databases.db, (err) => deps.log.warn({ err }, 'could not record an API key use'));
  app.addHook('onRequest', async (request, reply) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    let key = match?.[1] ? await findActiveApiKey(deps.databases.db, match[1]) : undefined;
    // Browsers cannot send a Bearer header. On routes marked `browser: true` (the queue dashboard and
    // its retry form), and only there, a request with no Authorization header may instead carry the
    // signed session cookie of POST /admin/login; its key must still be active (session.ts). Forms
    // sent with the cookie pass the Origin and CSRF checks of the preValidation hook below.
    if (!key && request.headers.authorization === undefined && request.routeOptions.config.browser) {
      key = await keyOfSession(deps, request);
      if (!key && wantsLoginPage(request)) return reply.redirect('/admin/login', 303);
    }
    if (!key) {
      reply.header('www-authenticate', 'Bearer realm="consentflow-admin"');
      return sendError(
        reply,
        'UNAUTHORIZED',
        'send a valid admin API key as `Authorization: Bearer <key>` (create one with `consentflow keys create --role ROLE`; revoked and expired keys are refused)',
        deps.metrics,
      );
    }
    request.apiKey = key;
    uses.record(key.id);
    const roles = request.routeOptions.config.roles;
    // Fail closed: a route that reached here without roles (none should: onRoute refuses them) is nobody's.
    if (!roles || !roles.includes(key.role)) {
      return sendError(reply, 'FORBIDDEN', `this route needs the role ${roles?.join(' or ') ?? '(none declared)'}; this key has the role ${key.role}`, deps.metrics);
    }
  });
  // Only requests authenticated by the session cookie: a Bearer call cannot be forged by another site.
  app.addHook('preValidation', async (request, reply) => {
    const refusal = forgedFormRefusal(deps, request);
    if (refusal) return sendError(reply, 'FORBIDDEN', refusal, deps.metrics);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    await auditAdminResponse(deps, request, reply);
    return payload;
  });
}

/** For handlers: what to add to this request's audit entry. */
export function noteAudit(request: FastifyRequest, note: AuditNote): void {
  request.auditNote = { ...request.auditNote, ...note };
}

export type { FastifyReply };

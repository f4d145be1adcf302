import type { FastifyInstance } from 'fastify';
import { AuditPage, AuditQuery } from '../../../schemas/admin';
import { readAuditLog } from '../../audit/read';
import type { HttpDeps } from '../deps';
import { adminRoute } from './route-table';

/** The audit log for a privacy officer (GDPR Art. 5(2)); reading it is itself audited. */
export function auditRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const config = {
    roles: ['privacy_officer'],
    action: 'audit.read',
    personal: true,
    summary: 'Read the audit log, newest first, with filters; page with `before`',
    query: AuditQuery,
    response: AuditPage,
  } as const;
  adminRoute(app, 'GET', '/audit', config, async ({ query }) => readAuditLog(deps.databases.db, deps.keys, query));
}

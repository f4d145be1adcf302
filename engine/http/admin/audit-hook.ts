import type { FastifyReply, FastifyRequest } from 'fastify';
import { appendAudit } from '../../audit/append';
import type { AuditOutcome, DbOrTrx } from '../../db/types';
import type { HttpDeps } from '../deps';

export interface AuditNote {
  /** A keyed subject pseudonym (engine/audit/targets.ts), a request id, a key id. */
  readonly target?: string | null;
  /** The reason stated for reading personal data. */
  readonly reason?: string | null;
  /** Set when the response carries decrypted personal data. */
  readonly decrypted?: boolean;
  readonly detail?: Record<string, unknown>;
}

const audited = new WeakSet<FastifyRequest>();

export function outcomeOf(status: number): AuditOutcome {
  if (status < 400) return 'ok';
  if (status === 401 || status === 403) return 'denied';
  if (status === 404) return 'not_found';
  if (status < 500) return 'invalid';
  return 'failed';
}

/**
 * Writes the audit entry of an admin response before its first byte leaves (fastify's onSend):
 * if the entry cannot be written the response becomes an error, so decrypted data never leaves
 * unrecorded (GDPR Art. 5(2); DESIGN.md invariant 5). Audited: every change, every read of
 * personal data, every refusal. Routine reads (queue counts, rule listings) are not, so an
 * operator's dashboard polling does not bury the entries that matter. 401s carry no key to name
 * and are counted in metrics (consentflow_http_errors_total) instead.
 */
export async function auditAdminResponse(deps: HttpDeps, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const key = request.apiKey;
  const config = request.routeOptions.config;
  if (!key || !config.action || audited.has(request)) return;
  const status = reply.statusCode;
  const note = request.auditNote ?? {};
  if (request.method === 'GET' && !config.personal && status !== 403 && !note.decrypted) return;
  audited.add(request);
  await append(deps.databases.db, deps, request, status);
}

/**
 * For a handler that changes something: its entry is written in the same transaction as the
 * change, so neither commits without the other (the response hook then writes nothing more).
 * `status` is the answer the change will get.
 */
export async function auditInTransaction(trx: DbOrTrx, deps: HttpDeps, request: FastifyRequest, status: number, note: AuditNote = {}): Promise<void> {
  request.auditNote = { ...request.auditNote, ...note };
  await append(trx, deps, request, status);
  audited.add(request);
}

async function append(db: DbOrTrx, deps: HttpDeps, request: FastifyRequest, status: number): Promise<void> {
  const key = request.apiKey;
  const config = request.routeOptions.config;
  if (!key || !config.action) return;
  const note = request.auditNote ?? {};
  await appendAudit(
    db,
    deps.keys,
    [
      {
        actor: `key:${key.id}`,
        action: config.action,
        target: note.target ?? null,
        outcome: outcomeOf(status),
        reason: note.reason ?? null,
        detail: { method: request.method, route: request.routeOptions.url ?? null, status, ...(note.decrypted ? { decrypted: true } : {}), ...note.detail },
      },
    ],
    request.log,
  );
}

import type { FastifyInstance } from 'fastify';
import { EraseSubjectRequest, ErasureIdParams } from '../../../schemas/erasure';
import { erasureTarget } from '../../audit/targets';
import { type SubjectIdentifier, subjectIdentifierOf } from '../../identity/lookup';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { createErasureRequest, erasureRequest, erasureStatus } from '../../privacy/erasure/request';
import { receiptKey, verifyReceipt } from '../../privacy/erasure/receipt';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { noteAudit } from './auth';
import { adminRoute } from './route-table';

/**
 * Erasure (GDPR Art. 17) for a privacy officer: the request is committed before the answer (202 with
 * its id), then run by the erasure worker; its progress and signed receipt are read back by id.
 */
export function erasureRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const erase = {
    roles: ['privacy_officer'],
    action: 'subject.erase',
    summary: 'Request the erasure of one person (GDPR Art. 17); answered 202 with the request id',
    body: EraseSubjectRequest,
    successStatus: 202,
  } as const;
  adminRoute(app, 'POST', '/subjects/erase', erase, async ({ body }, request, reply) => {
    // The schema lets through exactly one identifier.
    const identifier = subjectIdentifierOf(body) as SubjectIdentifier;
    const created = await createErasureRequest(deps.databases, deps.config, deps.keys, {
      identifier,
      origin: 'admin_api',
      requestedBy: `api key ${request.apiKey?.id ?? 'unknown'}`,
      deep: body.deep,
    });
    if (!created.ok) return sendError(reply, 'VALIDATION_FAILED', created.error, deps.metrics);
    if (created.created) await relayAfterCommit(deps, 1);
    noteAudit(request, { target: erasureTarget(created.id), detail: { created: created.created } });
    return reply.code(202).send({ id: created.id, state: created.state, created: created.created, status: `/admin/v1/erasures/${created.id}` });
  });

  const status = {
    roles: ['privacy_officer'],
    action: 'erasure.status',
    personal: true,
    summary: "An erasure request's progress and, once complete, its signed receipt",
    params: ErasureIdParams,
  } as const;
  adminRoute(app, 'GET', '/erasures/:id', status, async ({ params }, request, reply) => {
    noteAudit(request, { target: erasureTarget(params.id) });
    const row = await erasureRequest(deps.databases.db, params.id);
    if (!row) return sendError(reply, 'NOT_FOUND', 'no erasure request has that id', deps.metrics);
    const state = erasureStatus(row);
    const signatureValid = row.receipt && row.receipt_signature ? verifyReceipt(receiptKey(deps.keys.linkSigning), row.receipt, row.receipt_signature) : null;
    return { ...state, signatureValid };
  });
}

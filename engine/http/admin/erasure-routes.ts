import type { FastifyInstance } from 'fastify';
import { EraseSubjectRequest, ErasureIdParams } from '../../../schemas/erasure';
import { type SubjectIdentifier, subjectIdentifierOf } from '../../identity/lookup';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { createErasureRequest, erasureRequest, erasureStatus } from '../../privacy/erasure/request';
import { receiptKey, verifyReceipt } from '../../privacy/erasure/receipt';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { allowRoles } from './auth';

/**
 * Erasure (GDPR Art. 17) for a privacy officer: the request is committed before the answer (202 with
 * its id), then run by the erasure worker; its progress and signed receipt are read back by id.
 */
export async function erasureRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  app.post('/subjects/erase', { preHandler: allowRoles(deps, 'privacy_officer') }, async (request, reply) => {
    const body = EraseSubjectRequest.parse(request.body ?? {});
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
    request.log.info({ requestId: created.id, by: request.apiKey?.id, created: created.created }, 'erasure requested');
    return reply.code(202).send({ id: created.id, state: created.state, created: created.created, status: `/admin/v1/erasures/${created.id}` });
  });

  app.get('/erasures/:id', { preHandler: allowRoles(deps, 'privacy_officer') }, async (request, reply) => {
    const params = ErasureIdParams.safeParse(request.params);
    if (!params.success) return sendError(reply, 'VALIDATION_FAILED', 'id: expected an erasure request id (a uuid)', deps.metrics);
    const row = await erasureRequest(deps.databases.db, params.data.id);
    if (!row) return sendError(reply, 'NOT_FOUND', 'no erasure request has that id', deps.metrics);
    const status = erasureStatus(row);
    const signatureValid = row.receipt && row.receipt_signature ? verifyReceipt(receiptKey(deps.keys.linkSigning), row.receipt, row.receipt_signature) : null;
    return { ...status, signatureValid };
  });
}

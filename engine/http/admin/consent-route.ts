import type { FastifyInstance } from 'fastify';
import { AdminConsentRequest } from '../../../schemas/consent';
import { subjectTarget } from '../../audit/targets';
import { reactToConsent } from '../../automation/react-to-consent';
import { pendingPurposes } from '../../consent/confirmations';
import { appendLedger, consentOf } from '../../consent/ledger';
import { consentSummary } from '../../consent/summary';
import { findProfileId, type SubjectIdentifier, subjectIdentifierOf } from '../../identity/lookup';
import { scrubText } from '../../privacy/scrub-text';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { auditInTransaction } from './audit-hook';
import { noteAudit } from './auth';
import { adminRoute } from './route-table';

/** Withdrawal through any channel takes effect from its commit (GDPR Art. 7(3), 21(3)). */
export function consentRoute(app: FastifyInstance, deps: HttpDeps): void {
  const config = {
    roles: ['privacy_officer'],
    action: 'subject.consent',
    summary: "Record a person's withdrawal or objection received by another channel (letter, phone)",
    body: AdminConsentRequest,
  } as const;
  adminRoute(app, 'POST', '/subjects/consent', config, async ({ body }, request, reply) => {
    const catalog = deps.rules.purposes;
    const unknown = [...body.withdraw, ...body.object].find((p) => !catalog.get(p));
    if (unknown) {
      return sendError(reply, 'VALIDATION_FAILED', `unknown purpose "${unknown}"; declared in rules/purposes.yaml: ${catalog.names.join(', ')}`, deps.metrics);
    }
    // The schema lets through exactly one identifier.
    const id = subjectIdentifierOf(body) as SubjectIdentifier;
    const profileId = await findProfileId(deps.databases.vaultDb, deps.keys, [id]);
    if (!profileId) return sendError(reply, 'NOT_FOUND', 'nobody with that identifier is known; nothing was recorded', deps.metrics);
    noteAudit(request, { target: subjectTarget(deps.keys, profileId), detail: { withdraw: body.withdraw, object: body.object } });
    const now = new Date();
    const common = { profileId, occurredAt: now, sourceKind: 'admin' as const, method: 'admin' as const, sourceRef: `key ${request.apiKey?.id}: ${scrubText(body.reference)}` };
    await deps.databases.db.transaction().execute(async (trx) => {
      await auditInTransaction(trx, deps, request, 200);
      await appendLedger(trx, [
        ...body.withdraw.map((purpose) => ({ ...common, purpose, decision: 'withdrawn' as const })),
        ...body.object.map((purpose) => ({ ...common, purpose, decision: 'objected' as const })),
      ]);
      // Journeys running under the withdrawn consent end, and what they scheduled is cancelled.
      const reacted = await reactToConsent(trx, { compiled: deps.rules.compiled, catalog }, profileId);
      if (!reacted.ok) request.log.error({ error: reacted.error }, 'the rules failed after a withdrawal; it is recorded and the person marked for a re-check');
    });
    const db = deps.databases.db;
    return { consent: consentSummary(catalog, await consentOf(db, profileId), await pendingPurposes(db, profileId)) };
  });
}

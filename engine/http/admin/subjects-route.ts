import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { AddedSubject, AddSubjectRequest } from '../../../schemas/subjects';
import { subjectTarget } from '../../audit/targets';
import { processEventBatch } from '../../events/process-batch';
import { adminConsent } from '../../import/consent-evidence';
import { type Skip, skipsOf } from '../../import/checks';
import { personEvent } from '../../import/events';
import { checkPerson } from '../../import/person';
import { ADMIN_SOURCE, type OwnSource, ownSource } from '../../import/sources';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { batchDeps } from '../../runtime/batch';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { auditInTransaction } from './audit-hook';
import { noteAudit } from './auth';
import { adminRoute } from './route-table';

/** Why a person may not be added, for the 409; names no one (the caller gave the identifier). */
function refusal(skip: Skip): string {
  switch (skip.reason) {
    case 'erased':
      return 'this person was erased (GDPR Art. 17) and may not be added again by hand; they can come back only by signing up themselves. Nothing was recorded';
    case 'suppressed':
      return `this address is on the suppression list (${skip.detail ?? 'suppressed'}); nothing was recorded`;
    case 'objected':
      return `this person objected to ${skip.detail ?? 'direct marketing'} (GDPR Art. 21); nothing was recorded`;
    default:
      return `this person withdrew their consent to ${skip.detail ?? 'a purpose'} here, which wins over evidence given by hand (GDPR Art. 7(3)); nothing was recorded`;
  }
}

/**
 * `POST /admin/v1/subjects`: a person typed in (a business card, a call), with traits and optional
 * consent evidence; source `admin`. Stored by the events worker's own batch code, like an identify
 * from a website: the address in the vault, the traits minimised, the consent in the ledger with
 * method `admin`. The audit entry commits in the same transaction as the person (it writes personal
 * data). Write-only: the answer is the profile id, never anything decrypted.
 */
export function subjectsRoute(app: FastifyInstance, deps: HttpDeps): void {
  const batch = batchDeps(deps);
  // Found (or made) at the first request; the engine never removes a source row.
  let source: OwnSource | undefined;
  const config = {
    roles: ['marketer', 'privacy_officer'],
    action: 'subject.create',
    summary: 'Add a person with traits and optional consent evidence (source admin); 201 with the new profile id, 200 when already known',
    body: AddSubjectRequest,
    response: AddedSubject,
    successStatus: 201,
  } as const;
  adminRoute(app, 'POST', '/subjects', config, async ({ body }, request, reply) => {
    // Read at each request: a reload of the rules applies from the next one.
    const { properties, purposes } = deps.rules;
    const checked = checkPerson(properties, { email: body.email, userId: body.userId, traits: body.traits });
    if (!checked.ok) return sendError(reply, 'VALIDATION_FAILED', `${checked.field}: ${checked.message}`, deps.metrics);
    const evidence = body.consent ? adminConsent(purposes, body.consent, request.apiKey?.id ?? 'unknown') : undefined;
    if (evidence && !evidence.ok) return sendError(reply, 'VALIDATION_FAILED', evidence.message, deps.metrics);
    const consent = evidence?.ok ? evidence.change : undefined;
    noteAudit(request, { detail: { traits: Object.keys(body.traits).sort(), consent: consent?.grant ?? [] } });

    const [skip] = await skipsOf(deps.databases, deps.keys, purposes, [checked.person], consent?.grant ?? []);
    if (skip) return sendError(reply, 'CONFLICT', refusal(skip), deps.metrics);
    source ??= await ownSource(deps.databases.db, ADMIN_SOURCE);
    const event = personEvent({ person: checked.person, sourceId: source.id, messageId: `admin-${randomUUID()}`, at: new Date(), consent });
    let profileId: string | null = null;
    let created = false;
    const outcome = await processEventBatch(batch, [event], {
      inTransaction: async (trx, writes) => {
        profileId = writes.profileIds[0] ?? null;
        // No profile: an erasure of this person landed after the check above; its tombstone won.
        if (profileId === null) return;
        created = writes.created.has(profileId);
        await auditInTransaction(trx, deps, request, created ? 201 : 200, { target: subjectTarget(deps.keys, profileId) });
      },
    });
    if (outcome.rejected > 0) return sendError(reply, 'VALIDATION_FAILED', 'PostgreSQL refused a value of this request; nothing was recorded', deps.metrics);
    if (profileId === null) return sendError(reply, 'CONFLICT', refusal({ reason: 'erased' }), deps.metrics);
    await relayAfterCommit(deps, outcome.automation?.outboxWritten ?? 0);
    return reply.code(created ? 201 : 200).send({ id: profileId, created });
  });
}

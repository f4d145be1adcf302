import type { FastifyInstance } from 'fastify';
import { SubjectLookupRequest } from '../../../schemas/admin';
import { subjectTarget } from '../../audit/targets';
import { type SubjectIdentifier, subjectIdentifierOf } from '../../identity/lookup';
import { describeSubject } from '../../identity/subject';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { noteAudit } from './auth';
import { adminRoute } from './route-table';

/**
 * `POST /admin/v1/subjects/lookup`: what is stored about one person, decrypted, for a privacy
 * officer answering them (GDPR Art. 15) — the HTTP twin of `consentflow subject show`. The reason
 * is required and audited with the person's keyed pseudonym before the answer leaves.
 */
export function subjectLookupRoute(app: FastifyInstance, deps: HttpDeps): void {
  const config = {
    roles: ['privacy_officer'],
    action: 'subject.lookup',
    summary: 'Look one person up, decrypted; the reason is audited',
    body: SubjectLookupRequest,
  } as const;
  adminRoute(app, 'POST', '/subjects/lookup', config, async ({ body }, request, reply) => {
    noteAudit(request, { reason: body.reason });
    const report = await describeSubject(deps.databases, deps.keys, subjectIdentifierOf(body) as SubjectIdentifier);
    if (!report) return sendError(reply, 'NOT_FOUND', 'nobody with that identifier is known', deps.metrics);
    noteAudit(request, { target: subjectTarget(deps.keys, report.profileId), decrypted: true });
    return reply.header('cache-control', 'no-store').send(report);
  });
}

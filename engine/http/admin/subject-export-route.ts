import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { SubjectExportRequest } from '../../../schemas/subject-export';
import { subjectTarget } from '../../audit/targets';
import { openSubjectExport } from '../../privacy/export/document';
import { exportIdentifier } from '../../privacy/export/subject-ids';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { noteAudit } from './auth';
import { adminRoute } from './route-table';

/**
 * `POST /admin/v1/subjects/export`: everything about one person as one JSON document, for a
 * request of access (GDPR Art. 15(3): a copy of the personal data) or portability (Art. 20(1): in
 * a structured, commonly used and machine-readable format). Streamed: a person with 100,000 events
 * costs the server one page of them at a time.
 */
export function subjectExportRoute(app: FastifyInstance, deps: HttpDeps): void {
  const config = {
    roles: ['privacy_officer'],
    action: 'subject.export',
    summary: "Export everything held about one person (GDPR Art. 15, 20), decrypted; the reason is audited",
    body: SubjectExportRequest,
    response: { mediaType: 'application/json', description: 'the subject export document (schemas/json/subject-export.schema.json), streamed' },
  } as const;
  adminRoute(app, 'POST', '/subjects/export', config, async ({ body }, request, reply) => {
    const exported = await openSubjectExport(deps.databases, deps.keys, exportIdentifier(body), { reason: body.reason });
    if (!exported) return sendError(reply, 'NOT_FOUND', 'nobody with that identifier is known; nothing was exported', deps.metrics);
    // The audit entry (who, whose as a keyed pseudonym, why) is written before the first byte of
    // the document leaves (audit-hook.ts; DESIGN.md invariant 5).
    noteAudit(request, { target: subjectTarget(deps.keys, exported.profileId), reason: body.reason, decrypted: true, detail: { pendingMerges: exported.pendingMerges.length } });
    const stream = Readable.from(exported.chunks(), { objectMode: false });
    // Headers are gone once the first chunk is; a failure after that can only cut the response
    // short (the client sees an incomplete document, never a complete-looking wrong one).
    stream.on('error', (err) => request.log.error({ err, profileId: exported.profileId }, 'subject export failed while streaming'));
    return reply
      .header('cache-control', 'no-store')
      .header('content-disposition', `attachment; filename="subject-export-${exported.profileId}.json"`)
      .type('application/json; charset=utf-8')
      .send(stream);
  });
}

import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { SubjectExportRequest } from '../../../schemas/subject-export';
import { openSubjectExport } from '../../privacy/export/document';
import { exportIdentifier } from '../../privacy/export/subject-ids';
import { scrubText } from '../../privacy/scrub-text';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { allowRoles } from './auth';

/**
 * `POST /admin/v1/subjects/export`: everything about one person as one JSON document, for a
 * request of access (GDPR Art. 15(3): a copy of the personal data) or portability (Art. 20(1): in
 * a structured, commonly used and machine-readable format). Streamed: a person with 100,000 events
 * costs the server one page of them at a time.
 */
export function subjectExportRoute(app: FastifyInstance, deps: HttpDeps): void {
  app.post('/subjects/export', { preHandler: allowRoles(deps, 'privacy_officer') }, async (request, reply) => {
    const body = SubjectExportRequest.parse(request.body ?? {});
    const exported = await openSubjectExport(deps.databases, deps.keys, exportIdentifier(body), { reason: body.reason ?? null });
    if (!exported) return sendError(reply, 'NOT_FOUND', 'nobody with that identifier is known; nothing was exported', deps.metrics);
    // Decryption outside the email worker is recorded (DESIGN.md invariant 5; GDPR Art. 5(2),
    // 30): who, whose (the pseudonym only) and why.
    request.log.info(
      { by: request.apiKey?.id, profileId: exported.profileId, pendingMerges: exported.pendingMerges, reason: body.reason === undefined ? null : scrubText(body.reason) },
      'subject export: personal data decrypted for an access or portability request (GDPR Art. 15, 20)',
    );
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

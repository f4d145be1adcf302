import type { FastifyInstance } from 'fastify';
import { ProcessingRecords, ProcessingRecordsQuery } from '../../../schemas/processing-records';
import { buildProcessingRecords } from '../../reports/processing-records';
import { processingRecordsMarkdown } from '../../reports/processing-records-md';
import { processingRecordsInput } from '../../reports/records-input';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';

/**
 * `GET /admin/v1/processing-records`: the records of processing activities (GDPR Art. 30), which
 * the controller makes available to the supervisory authority on request (Art. 30(4)). JSON by
 * default (schemas/processing-records.ts), `?format=md` a Markdown document. Built from the rules
 * this process runs and its configuration, so a reload shows at once. The admin scope authorizes
 * by `config.roles` and writes the audit entry named by `config.action`.
 */
export function processingRecordsRoute(app: FastifyInstance, deps: HttpDeps): void {
  app.get(
    '/processing-records',
    {
      config: {
        roles: ['privacy_officer', 'admin'],
        action: 'report.processing',
        summary: 'The records of processing activities (GDPR Art. 30): JSON, or Markdown with ?format=md',
        query: ProcessingRecordsQuery,
        response: ProcessingRecords,
      },
    },
    async (request, reply) => {
      const query = ProcessingRecordsQuery.safeParse(request.query ?? {});
      if (!query.success) return sendError(reply, 'VALIDATION_FAILED', 'format: expected md or json', deps.metrics);
      const records = buildProcessingRecords(processingRecordsInput(deps.config, deps.rules));
      reply.header('cache-control', 'no-store');
      if (query.data.format === 'md') return reply.type('text/markdown; charset=utf-8').send(processingRecordsMarkdown(records));
      return reply.type('application/json; charset=utf-8').send(records);
    },
  );
}

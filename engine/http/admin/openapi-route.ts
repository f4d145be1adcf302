import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps';
import { buildOpenApiDocument, type OpenApiDocument } from './openapi';
import { type AdminRouteTable, adminRoute } from './route-table';

/** The admin API's version, as in its /admin/v1 prefix. */
const ADMIN_API_VERSION = '1.0.0';

/**
 * `GET /admin/v1/openapi.json`, for every role: the document of the whole admin API (a key sees the
 * routes of other roles too, with the roles they need; it learns nothing it could use without them).
 * Built at the first request: by then the server is ready and the route table complete.
 */
export function openApiRoute(app: FastifyInstance, deps: HttpDeps, table: AdminRouteTable): void {
  let document: OpenApiDocument | undefined;
  const config = {
    roles: ['marketer', 'operator', 'privacy_officer', 'admin'],
    action: 'admin.openapi',
    summary: 'This OpenAPI 3.1 document',
    response: { mediaType: 'application/json', description: 'The OpenAPI 3.1 document of the admin API' },
  } as const;
  adminRoute(app, 'GET', '/openapi.json', config, async (_input, _request, reply) => {
    document ??= buildOpenApiDocument(table.list(), { version: ADMIN_API_VERSION, serverUrl: deps.config.http.publicUrl });
    return reply.type('application/json; charset=utf-8').send(document);
  });
}

import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { createApiKey } from '../../engine/auth/api-keys';
import { buildOpenApiDocument, type JsonSchema, type OpenApiDocument, openApiPath } from '../../engine/http/admin/openapi';
import type { AdminRoute } from '../../engine/http/admin/route-table';
import { buildHttpServer } from '../../engine/http/server';
import { EraseSubjectRequest } from '../../schemas/erasure';
import { Role } from '../../schemas/roles';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * The structure OpenAPI 3.1 requires (§4.8): the fields a reader cannot do without. Not the whole
 * official meta-schema, which this repository does not ship; each embedded JSON Schema is compiled
 * separately below, as draft 2020-12.
 */
const OPENAPI_31_MINIMAL = {
  type: 'object',
  required: ['openapi', 'info', 'paths'],
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' },
    info: { type: 'object', required: ['title', 'version'], properties: { title: { type: 'string' }, version: { type: 'string' } } },
    servers: { type: 'array', items: { type: 'object', required: ['url'] } },
    paths: {
      type: 'object',
      propertyNames: { pattern: '^/' },
      additionalProperties: {
        type: 'object',
        propertyNames: { enum: [...METHODS, 'parameters', 'summary', 'description'] },
        additionalProperties: {
          type: 'object',
          required: ['responses'],
          properties: {
            operationId: { type: 'string', minLength: 1 },
            parameters: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'in', 'schema'],
                properties: { in: { enum: ['path', 'query', 'header', 'cookie'] }, required: { type: 'boolean' } },
                if: { properties: { in: { const: 'path' } } },
                then: { required: ['required'], properties: { required: { const: true } } },
              },
            },
            requestBody: { type: 'object', required: ['content'], properties: { content: { type: 'object', minProperties: 1 } } },
            responses: {
              type: 'object',
              minProperties: 1,
              propertyNames: { pattern: '^([1-5][0-9X]{2}|default)$' },
              additionalProperties: {
                oneOf: [
                  { type: 'object', required: ['$ref'], properties: { $ref: { type: 'string', pattern: '^#/components/responses/' } } },
                  { type: 'object', required: ['description'], not: { required: ['$ref'] } },
                ],
              },
            },
          },
        },
      },
    },
    components: {
      type: 'object',
      properties: {
        schemas: { type: 'object', propertyNames: { pattern: '^[A-Za-z0-9._-]+$' } },
        responses: { type: 'object', additionalProperties: { type: 'object', required: ['description'] } },
        securitySchemes: { type: 'object', additionalProperties: { type: 'object', required: ['type'] } },
      },
    },
  },
};

function ajv(): Ajv2020 {
  const instance = new Ajv2020({ strict: false, allErrors: true });
  addFormats(instance);
  return instance;
}

/** Every JSON Schema in the document (parameters, bodies, responses), each with where it is. */
function embeddedSchemas(doc: OpenApiDocument): Array<{ where: string; schema: JsonSchema }> {
  const found: Array<{ where: string; schema: JsonSchema }> = [];
  const media = (where: string, content: unknown) => {
    for (const [type, value] of Object.entries((content ?? {}) as Record<string, { schema?: JsonSchema }>)) {
      if (value.schema) found.push({ where: `${where} ${type}`, schema: value.schema });
    }
  };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      for (const p of op.parameters ?? []) found.push({ where: `${method} ${path} ${p.in} ${p.name}`, schema: p.schema });
      media(`${method} ${path} body`, op.requestBody?.content);
      for (const [status, response] of Object.entries(op.responses)) media(`${method} ${path} ${status}`, (response as { content?: unknown }).content);
    }
  }
  for (const [name, schema] of Object.entries(doc.components.schemas)) found.push({ where: `components.schemas.${name}`, schema });
  return found;
}

/** Compiles one embedded schema with the document's components beside it, so its $refs resolve. */
function compile(doc: OpenApiDocument, schema: JsonSchema) {
  return ajv().compile({ ...schema, components: doc.components });
}

describe('admin API OpenAPI document', () => {
  let env: TestServices;
  let app: FastifyInstance;
  let base: string;
  let doc: OpenApiDocument;
  let key: string;

  beforeAll(async () => {
    env = await openTestServices();
    app = await buildHttpServer(env.services);
    base = await listen(app);
    key = (await createApiKey(env.services.databases.db, { role: 'marketer', name: 'openapi reader' })).key;
    const res = await fetch(`${base}/admin/v1/openapi.json`, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    doc = (await res.json()) as OpenApiDocument;
  });
  afterAll(async () => {
    await app.close();
    await env.close();
  });

  it('is served to every role and to no one without a key', async () => {
    for (const role of Role.options) {
      const { key: roleKey } = await createApiKey(env.services.databases.db, { role });
      const res = await fetch(`${base}/admin/v1/openapi.json`, { headers: { authorization: `Bearer ${roleKey}` } });
      expect([role, res.status]).toEqual([role, 200]);
      await res.arrayBuffer();
    }
    const anonymous = await fetch(`${base}/admin/v1/openapi.json`);
    expect(anonymous.status).toBe(401);
  });

  it('has every route of the table, with its method, roles, audit action and responses', () => {
    const routes = app.adminRouteTable.list();
    expect(routes.length).toBeGreaterThan(10);
    const operationIds = new Set<string>();
    for (const route of routes) {
      const path = openApiPath(route.url);
      expect(path).not.toContain(':');
      const op = doc.paths[path]?.[route.method.toLowerCase()];
      const where = `${route.method} ${route.url}`;
      expect([where, op !== undefined]).toEqual([where, true]);
      if (!op) continue;
      expect(op['x-roles']).toEqual([...route.config.roles]);
      expect(op['x-audit-action']).toBe(route.config.action);
      for (const role of route.config.roles) expect(op.description).toContain(role);
      expect(op.description).toMatch(/^Allowed for API keys with the roles? /);
      operationIds.add(op.operationId);
      const success = String(route.config.successStatus ?? 200);
      expect(Object.keys(op.responses).sort()).toEqual([...new Set([success, '400', '401', '403', '404'])].sort());
      if (route.config.summary) expect(op.summary).toBe(route.config.summary);
      // Every templated segment is a required path parameter.
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name)).toEqual(templated);
    }
    expect(operationIds.size).toBe(routes.length);
    // Nothing in the document that is not in the table.
    const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    expect(documented.sort()).toEqual(routes.map((r) => `${r.method} ${openApiPath(r.url)}`).sort());
  });

  it('is structurally valid OpenAPI 3.1, and each embedded schema is valid JSON Schema 2020-12', () => {
    const validate = ajv().compile(OPENAPI_31_MINIMAL);
    expect([validate(doc), validate.errors]).toEqual([true, null]);
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes).toMatchObject({ bearerAuth: { type: 'http', scheme: 'bearer' } });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    const schemas = embeddedSchemas(doc);
    expect(schemas.length).toBeGreaterThan(20);
    for (const { where, schema } of schemas) {
      expect([where, JSON.stringify(schema).includes('#/$defs/')]).toEqual([where, false]);
      expect(() => compile(doc, schema)).not.toThrow();
    }
  });

  it('describes the shared error body for 400, 401, 403 and 404', () => {
    const error = doc.components.schemas.Error as JsonSchema;
    const check = compile(doc, error);
    expect(check({ error: { code: 'FORBIDDEN', message: 'no' } })).toBe(true);
    expect(check({ error: { code: 'NOT_A_CODE', message: 'no' } })).toBe(false);
    expect(check({ message: 'no' })).toBe(false);
    for (const name of ['BadRequest', 'Unauthorized', 'Forbidden', 'NotFound']) {
      expect(doc.components.responses[name]).toMatchObject({ content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
    }
  });

  it("requires exactly the fields of the erase route's zod schema, and no others", () => {
    const op = doc.paths['/admin/v1/subjects/erase']?.post;
    expect(op?.requestBody?.required).toBe(true);
    const schema = op?.requestBody?.content['application/json']?.schema as JsonSchema;
    // A field is required when the zod schema refuses it missing (input side: defaults and optionals are not).
    const shape = EraseSubjectRequest.shape as Record<string, z.ZodType>;
    const zodRequired = Object.entries(shape)
      .filter(([, field]) => !field.safeParse(undefined).success)
      .map(([name]) => name);
    expect([...((schema.required as string[] | undefined) ?? [])].sort()).toEqual(zodRequired.sort());
    expect(Object.keys(schema.properties as object).sort()).toEqual(Object.keys(shape).sort());
    expect(schema.additionalProperties).toBe(false);
    expect((schema.properties as Record<string, JsonSchema>).deep).toMatchObject({ type: 'boolean', default: false });
    // And a required field where there is one: the keys POST needs a role.
    const keysBody = doc.paths['/admin/v1/keys']?.post?.requestBody?.content['application/json']?.schema as JsonSchema;
    expect(keysBody.required).toEqual(['role']);
  });

  it("shows the role enum of a keys POST body, and checks bodies as the route does", () => {
    const op = doc.paths['/admin/v1/keys']?.post;
    expect(op?.responses['201']).toBeDefined();
    const schema = op?.requestBody?.content['application/json']?.schema as JsonSchema;
    expect((schema.properties as Record<string, JsonSchema>).role).toMatchObject({ type: 'string', enum: [...Role.options] });
    const check = compile(doc, schema);
    expect(check({ role: 'marketer', name: 'campaigns' })).toBe(true);
    expect(check({ role: 'root' })).toBe(false);
    expect(check({ role: 'admin', admin: true })).toBe(false);
    // The answer is described from its output schema: never the key hash, the key once.
    const created = (op?.responses['201'] as { content: Record<string, { schema: JsonSchema }> }).content['application/json']?.schema;
    expect(created?.required).toEqual(expect.arrayContaining(['id', 'key', 'role']));
  });

  it('gives path and query parameters in OpenAPI form', () => {
    const revoke = doc.paths['/admin/v1/keys/{id}/revoke']?.post;
    expect(revoke?.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: expect.objectContaining({ type: 'string', format: 'uuid' }) }]);
    const failed = doc.paths['/admin/v1/queues/{queue}/failed']?.get;
    const byName = Object.fromEntries((failed?.parameters ?? []).map((p) => [p.name, p]));
    expect(byName.queue).toMatchObject({ in: 'path', required: true, schema: { enum: ['events', 'journeys', 'broadcasts', 'email', 'erasure', 'maintenance'] } });
    expect(byName.limit).toMatchObject({ in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } });
    expect(byName.start).toMatchObject({ in: 'query', required: false, schema: { minimum: 0, default: 0 } });
    const dashboard = doc.paths['/admin/v1/dashboard']?.get;
    expect(dashboard?.responses['200']).toMatchObject({ content: { 'text/html': {} } });
    expect(dashboard?.security).toEqual([{ bearerAuth: [] }, { adminSession: [] }]);
  });

  it('never stops at a schema JSON Schema cannot express, and keeps recursive ones resolvable', () => {
    type Tree = { name: string; children: Tree[] };
    const Tree: z.ZodType<Tree> = z.lazy(() => z.object({ name: z.string(), children: z.array(Tree) }));
    const routes: AdminRoute[] = [
      {
        method: 'POST',
        url: '/admin/v1/odd/:id',
        config: {
          roles: ['admin'],
          action: 'odd.thing',
          body: z.object({ when: z.date(), n: z.string().transform((s) => s.length), custom: z.custom<Buffer>((v) => Buffer.isBuffer(v)), tree: Tree }),
          response: z.object({ at: z.date(), length: z.string().transform((s) => s.length), big: z.bigint(), tree: Tree }),
        },
      },
      { method: 'POST', url: '/admin/v1/odd/:id', config: { roles: ['admin'], action: 'odd.thing', body: z.object({}) } },
    ];
    const built = buildOpenApiDocument(routes, { version: '1.0.0', serverUrl: 'http://localhost' });
    const op = built.paths['/admin/v1/odd/{id}']?.post;
    expect(op?.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
    // The second route of the same path and method (a table never has one, but the builder must not mix them up).
    expect(op?.operationId).toBe('oddThing2');
    expect(op?.requestBody?.required).toBe(false);
    const first = buildOpenApiDocument(routes.slice(0, 1), { version: '1.0.0', serverUrl: 'http://localhost' });
    const firstOp = first.paths['/admin/v1/odd/{id}']?.post;
    const body = firstOp?.requestBody?.content['application/json']?.schema as JsonSchema;
    expect((body.properties as Record<string, JsonSchema>).n).toMatchObject({ type: 'string' });
    const answer = (firstOp?.responses['200'] as { content: Record<string, { schema: JsonSchema }> }).content['application/json']?.schema as JsonSchema;
    expect((answer.properties as Record<string, JsonSchema>).at).toEqual({ type: 'string', format: 'date-time' });
    for (const { where, schema } of embeddedSchemas(first)) {
      expect([where, JSON.stringify(schema).includes('#/$defs/')]).toEqual([where, false]);
      expect(() => compile(first, schema)).not.toThrow();
    }
    const check = compile(first, body);
    expect(check({ when: 'x', n: 'abc', custom: 1, tree: { name: 'a', children: [{ name: 'b', children: [] }] } })).toBe(true);
    expect(check({ when: 'x', n: 'abc', custom: 1, tree: { name: 'a', children: [{ name: 7, children: [] }] } })).toBe(false);
  });
});

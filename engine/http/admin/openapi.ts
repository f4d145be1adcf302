import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../../errors';
import type { AdminRoute, AdminRouteConfig } from './route-table';

/**
 * The OpenAPI 3.1 document of the admin API, built from the route table: the same zod schemas that
 * parse each request describe it (zod 4's native JSON Schema output, draft 2020-12, which OpenAPI
 * 3.1 uses as is), so the document cannot drift from what the routes accept. Pure: table in,
 * document out.
 */

export type JsonSchema = Record<string, unknown>;

export interface OpenApiParameter {
  readonly name: string;
  readonly in: 'path' | 'query';
  readonly required: boolean;
  readonly description?: string;
  readonly schema: JsonSchema;
}

export interface OpenApiOperation {
  readonly operationId: string;
  readonly summary?: string;
  readonly description: string;
  readonly tags: string[];
  readonly 'x-roles': string[];
  readonly 'x-audit-action': string;
  readonly parameters?: OpenApiParameter[];
  readonly requestBody?: { readonly required: boolean; readonly content: Record<string, { readonly schema: JsonSchema }> };
  readonly responses: Record<string, unknown>;
  readonly security?: Array<Record<string, string[]>>;
}

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: { readonly title: string; readonly version: string; readonly description: string };
  readonly servers: Array<{ readonly url: string }>;
  readonly security: Array<Record<string, string[]>>;
  readonly paths: Record<string, Record<string, OpenApiOperation>>;
  readonly components: {
    readonly schemas: Record<string, JsonSchema>;
    readonly responses: Record<string, unknown>;
    readonly securitySchemes: Record<string, unknown>;
  };
}

export interface OpenApiOptions {
  /** info.version: the version of the admin API. */
  readonly version: string;
  /** Where the API is reached (PUBLIC_URL); the paths carry their /admin/v1 prefix. */
  readonly serverUrl: string;
}

/** The one error body of every JSON error (engine/http/errors.ts ErrorBody). */
const ErrorBody = z.object({
  error: z.object({
    code: z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]).describe('A stable code from the registry (engine/errors/codes.ts)'),
    message: z.string().describe('What is wrong and what is allowed, for a person to read'),
  }),
});

const ERROR_RESPONSES = {
  '400': ['BadRequest', 'The body is not JSON, or a field, query or path parameter is missing or not allowed (the message names it)'],
  '401': ['Unauthorized', 'No valid API key (unknown, revoked or expired keys alike)'],
  '403': ['Forbidden', "The key's role may not use this route (recorded in the audit log)"],
  '404': ['NotFound', 'No such resource'],
} as const;

const SUCCESS = { 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content' } as Record<number, string>;

const COMPONENT_NAME = /[^A-Za-z0-9._-]/g;

/** Turns zod schemas into JSON Schemas, moving each one's $defs into components.schemas. */
class SchemaConverter {
  readonly components: Record<string, JsonSchema> = {};

  convert(schema: z.ZodType, io: 'input' | 'output', name: string): JsonSchema {
    let json: JsonSchema;
    try {
      json = z.toJSONSchema(schema, {
        io,
        cycles: 'ref',
        reused: 'inline',
        // A transform's output, a custom check, a Date on input: no JSON Schema says what they are, so
        // they become "anything" rather than stopping the document. A Date answered in JSON is its
        // ISO 8601 string.
        unrepresentable: ({ zodSchema }) => (io === 'output' && zodSchema._zod.def.type === 'date' ? { type: 'string', format: 'date-time' } : 'any'),
      }) as JsonSchema;
    } catch (err) {
      return { description: `This schema cannot be represented in JSON Schema (${err instanceof Error ? err.message : String(err)}).` };
    }
    const { $schema: _dialect, $defs, ...rest } = json;
    if (!$defs || typeof $defs !== 'object') return rest;
    // References in a schema point into its own $defs; inside the document they must point at components.
    const renamed = new Map<string, string>();
    for (const def of Object.keys($defs)) renamed.set(def, `${name}.${def}`.replace(COMPONENT_NAME, '_'));
    for (const [def, value] of Object.entries($defs as Record<string, JsonSchema>)) {
      this.components[renamed.get(def) as string] = rewriteRefs(value, renamed) as JsonSchema;
    }
    return rewriteRefs(rest, renamed) as JsonSchema;
  }
}

function rewriteRefs(value: unknown, renamed: ReadonlyMap<string, string>): unknown {
  if (Array.isArray(value)) return value.map((v) => rewriteRefs(v, renamed));
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      if (k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')) {
        const [def = '', ...rest] = v.slice('#/$defs/'.length).split('/');
        const target = renamed.get(decodeURIComponent(def.replace(/~1/g, '/').replace(/~0/g, '~')));
        if (target) return [k, [`#/components/schemas/${target}`, ...rest].join('/')];
      }
      return [k, rewriteRefs(v, renamed)];
    }),
  );
}

/** `/admin/v1/keys/:id/revoke` → `/admin/v1/keys/{id}/revoke` (a fastify regex constraint is dropped). */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)(\([^)]*\))?/g, '{$1}');
}

function pathParamNames(url: string): string[] {
  return [...url.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1] as string);
}

/** `subject.export` → `subjectExport`. */
function operationIdOf(action: string): string {
  const words = action.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return words.map((w, i) => (i === 0 ? w : w.charAt(0).toUpperCase() + w.slice(1))).join('') || 'operation';
}

function objectParts(json: JsonSchema): { properties: Record<string, JsonSchema>; required: string[] } {
  const properties = json.properties && typeof json.properties === 'object' ? (json.properties as Record<string, JsonSchema>) : {};
  const required = Array.isArray(json.required) ? (json.required as string[]) : [];
  return { properties, required };
}

function parameter(name: string, where: 'path' | 'query', required: boolean, schema: JsonSchema | undefined): OpenApiParameter {
  const { description, ...rest } = schema ?? { type: 'string' };
  return { name, in: where, required, ...(typeof description === 'string' ? { description } : {}), schema: rest };
}

const list = (items: readonly string[]): string => (items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`);

function describe(method: string, config: AdminRouteConfig): string {
  const roles = config.roles.length === 1 ? `the role ${config.roles[0]}` : `the roles ${list(config.roles)}`;
  const sentences = [`Allowed for API keys with ${roles}; any other key gets 403, recorded in the audit log.`];
  if (config.personal) sentences.push(`Reads personal data: every call is recorded in the audit log as \`${config.action}\`.`);
  else if (method !== 'GET') sentences.push(`Every call is recorded in the audit log as \`${config.action}\`.`);
  if (config.browser) {
    sentences.push(
      method === 'GET'
        ? 'A browser signed in at `/admin/login` may use its session cookie instead of a Bearer key.'
        : 'A browser signed in at `/admin/login` may send it as an HTML form with its session cookie instead of a Bearer key; the form must carry the CSRF token of the session (field `csrf`), and its Origin must be PUBLIC_URL; it is then answered with a redirect (303) back to its page.',
    );
  }
  return sentences.join(' ');
}

function successResponse(converter: SchemaConverter, operationId: string, config: AdminRouteConfig, status: number): unknown {
  const description = SUCCESS[status] ?? 'Success';
  const response = config.response;
  if (!response) return { description: `${description}; a JSON body not described by a schema yet`, content: { 'application/json': {} } };
  if ('mediaType' in response) {
    const schema = response.mediaType.includes('json') ? {} : { type: 'string' };
    return { description: response.description, content: { [response.mediaType]: { schema } } };
  }
  return { description, content: { 'application/json': { schema: converter.convert(response, 'output', `${operationId}.response`) } } };
}

/** The OpenAPI 3.1 document of the given admin routes. */
export function buildOpenApiDocument(routes: readonly AdminRoute[], options: OpenApiOptions): OpenApiDocument {
  const converter = new SchemaConverter();
  const paths: Record<string, Record<string, OpenApiOperation>> = {};
  const usedIds = new Set<string>();

  for (const { method, url, config } of routes) {
    let operationId = operationIdOf(config.action);
    for (let n = 2; usedIds.has(operationId); n++) operationId = `${operationIdOf(config.action)}${n}`;
    usedIds.add(operationId);

    const pathSchema = config.params ? objectParts(converter.convert(config.params, 'input', `${operationId}.params`)) : undefined;
    const querySchema = config.query ? objectParts(converter.convert(config.query, 'input', `${operationId}.query`)) : undefined;
    const parameters = [
      // Every templated segment must be described (OpenAPI 3.1 §4.8.12.1), with a schema or without.
      ...pathParamNames(url).map((name) => parameter(name, 'path', true, pathSchema?.properties[name])),
      ...Object.entries(querySchema?.properties ?? {}).map(([name, schema]) => parameter(name, 'query', querySchema?.required.includes(name) ?? false, schema)),
    ];

    const status = config.successStatus ?? 200;
    const responses: Record<string, unknown> = { [String(status)]: successResponse(converter, operationId, config, status) };
    for (const [code, [ref]] of Object.entries(ERROR_RESPONSES)) responses[code] = { $ref: `#/components/responses/${ref}` };

    const operation: OpenApiOperation = {
      operationId,
      ...(config.summary ? { summary: config.summary } : {}),
      description: describe(method, config),
      tags: [url.split('/')[3] ?? 'admin'],
      'x-roles': [...config.roles],
      'x-audit-action': config.action,
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(config.body
        ? {
            requestBody: {
              // The route parses a missing body as {}: it is required exactly when {} is refused.
              required: !config.body.safeParse({}).success,
              content: { 'application/json': { schema: converter.convert(config.body, 'input', `${operationId}.body`) } },
            },
          }
        : {}),
      responses,
      ...(config.browser ? { security: [{ bearerAuth: [] }, { adminSession: [] }] } : {}),
    };
    const path = openApiPath(url);
    paths[path] = { ...paths[path], [method.toLowerCase()]: operation };
  }

  const errorSchema = converter.convert(ErrorBody, 'output', 'Error');
  return {
    openapi: '3.1.0',
    info: {
      title: 'consentflow admin API',
      version: options.version,
      description:
        'The admin API of consentflow. Every route needs an API key (`consentflow keys create --role ROLE`) as `Authorization: Bearer <key>`; each route names the roles it allows (`x-roles`) and its audit action (`x-audit-action`).',
    },
    servers: [{ url: options.serverUrl }],
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      schemas: { ...converter.components, Error: errorSchema },
      responses: Object.fromEntries(
        Object.entries(ERROR_RESPONSES).map(([code, [name, description]]) => [
          name,
          {
            description,
            ...(code === '401' ? { headers: { 'WWW-Authenticate': { description: 'The Bearer challenge (RFC 6750 §3)', schema: { type: 'string' } } } } : {}),
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
        ]),
      ),
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An admin API key, `cfk_…`' },
        adminSession: {
          type: 'apiKey',
          in: 'cookie',
          name: 'cf_admin_session',
          description: 'The browser session of POST /admin/login (8 hours), accepted only on the routes that list it',
        },
      },
    },
  };
}

import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { z } from 'zod';
import type { Role } from '../../../schemas/roles';

/** What every admin route declares (engine/http/admin/auth.ts refuses a route without it). */
export interface AdminRouteConfig {
  /** The roles allowed; any other key gets 403 (audited). */
  readonly roles: readonly Role[];
  /** The audit log's name for it: `subject.export`. */
  readonly action: string;
  /** A GET that reads personal data: audited like a change. */
  readonly personal?: boolean;
  /** For the OpenAPI document. */
  readonly summary?: string;
  readonly body?: z.ZodType;
  readonly query?: z.ZodType;
  readonly params?: z.ZodType;
  /** The 2xx answer: a schema (JSON) or a media type with a description. */
  readonly response?: z.ZodType | { readonly mediaType: string; readonly description: string };
  readonly successStatus?: number;
  /**
   * Also reachable by a browser signed in at /admin/login: its session cookie is accepted instead of
   * a Bearer header (engine/http/admin/session.ts); forms sent with it need the CSRF token.
   */
  readonly browser?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every admin route with its roles and schemas (set by engine/http/server.ts). */
    adminRouteTable: AdminRouteTable;
  }
  interface FastifyContextConfig {
    roles?: readonly Role[];
    action?: string;
    personal?: boolean;
    summary?: string;
    body?: z.ZodType;
    query?: z.ZodType;
    params?: z.ZodType;
    response?: z.ZodType | { readonly mediaType: string; readonly description: string };
    successStatus?: number;
    browser?: boolean;
  }
}

export interface AdminRoute {
  readonly method: string;
  /** With the /admin/v1 prefix. */
  readonly url: string;
  readonly config: AdminRouteConfig;
}

/** The admin routes as registered: for the role test and the OpenAPI document. */
export class AdminRouteTable {
  private readonly routes: AdminRoute[] = [];

  add(route: RouteOptions): void {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      this.routes.push({ method, url: route.url, config: route.config as AdminRouteConfig });
    }
  }

  list(): readonly AdminRoute[] {
    return this.routes;
  }
}

type Parsed<C extends AdminRouteConfig> = {
  readonly body: C['body'] extends z.ZodType ? z.output<C['body']> : undefined;
  readonly query: C['query'] extends z.ZodType ? z.output<C['query']> : undefined;
  readonly params: C['params'] extends z.ZodType ? z.output<C['params']> : undefined;
};

/**
 * Declares an admin route: its roles, audit name and schemas in one place. The body, query and
 * params are parsed with the schemas before the handler runs (a ZodError becomes a 400 naming the
 * field), and the same schemas describe the route in the OpenAPI document.
 */
export function adminRoute<C extends AdminRouteConfig>(
  app: FastifyInstance,
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  config: C,
  handler: (input: Parsed<C>, request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
): void {
  app.route({
    method,
    url,
    config,
    handler: async (request, reply) => {
      const input = {
        body: config.body ? config.body.parse(request.body ?? {}) : undefined,
        query: config.query ? config.query.parse(request.query ?? {}) : undefined,
        params: config.params ? config.params.parse(request.params ?? {}) : undefined,
      } as Parsed<C>;
      return handler(input, request, reply);
    },
  });
}

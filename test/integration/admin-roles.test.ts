import Fastify from 'fastify';
import { createApiKey } from '../../engine/auth/api-keys';
import { requireRouteDecisions } from '../../engine/http/admin/auth';
import { AdminRouteTable } from '../../engine/http/admin/route-table';
import { buildHttpServer } from '../../engine/http/server';
import type { Role } from '../../schemas/roles';
import type { FastifyInstance } from 'fastify';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';

const ALL: readonly Role[] = ['marketer', 'operator', 'privacy_officer', 'admin'];

/**
 * The access matrix of issue 8, one line a route. A route added to the admin API without a line
 * here fails the first test: every route needs a decision, written down where a reviewer sees it.
 */
const EXPECTED: Record<string, readonly Role[]> = {
  'GET /admin/v1/whoami': ALL,
  'GET /admin/v1/openapi.json': ALL,
  'GET /admin/v1/keys': ['admin'],
  'POST /admin/v1/keys': ['admin'],
  'POST /admin/v1/keys/:id/revoke': ['admin'],
  // Adding a person is write-only (the answer is a profile id, nothing decrypted): the marketer who
  // types in a contact, and the privacy officer who rectifies one (GDPR Art. 16). Not admin: keys only.
  'POST /admin/v1/subjects': ['marketer', 'privacy_officer'],
  'POST /admin/v1/subjects/lookup': ['privacy_officer'],
  'POST /admin/v1/subjects/export': ['privacy_officer'],
  'POST /admin/v1/subjects/consent': ['privacy_officer'],
  'POST /admin/v1/subjects/erase': ['privacy_officer'],
  'GET /admin/v1/erasures/:id': ['privacy_officer'],
  'GET /admin/v1/audit': ['privacy_officer'],
  'GET /admin/v1/processing-records': ['privacy_officer', 'admin'],
  'POST /admin/v1/rules/reload': ['marketer'],
  'GET /admin/v1/rules': ['marketer', 'operator'],
  'GET /admin/v1/segments': ['marketer'],
  // Counts only, never who: the marketer's view of their campaign (issue 12).
  'GET /admin/v1/campaigns/:id/stats': ['marketer'],
  'GET /admin/v1/queues': ['operator'],
  'GET /admin/v1/queues/:queue/failed': ['operator'],
  'POST /admin/v1/queues/:queue/jobs/:jobId/retry': ['operator'],
  'GET /admin/v1/dashboard': ['operator'],
};

/** A concrete URL for a route pattern: ids that exist nowhere, a queue that does. */
function concrete(url: string): string {
  return url
    .replace(':id', '00000000-0000-4000-8000-000000000000')
    .replace(':queue', 'events')
    .replace(':jobId', 'no-such-job');
}

describe('admin API roles: every route, every role', () => {
  let env: TestServices;
  let app: FastifyInstance;
  let base: string;
  const keys = {} as Record<Role, { key: string; id: string }>;

  beforeAll(async () => {
    env = await openTestServices();
    app = await buildHttpServer(env.services);
    base = await listen(app);
    for (const role of ALL) {
      const created = await createApiKey(env.services.databases.db, { role, name: `${role} matrix` });
      keys[role] = { key: created.key, id: created.id };
    }
  });
  afterAll(async () => {
    await app.close();
    await env.close();
  });

  it('has a decision in this test for every admin route, and no decision for a route that does not exist', () => {
    const registered = app.adminRouteTable.list().map((r) => `${r.method} ${r.url}`);
    expect([...registered].sort()).toEqual(Object.keys(EXPECTED).sort());
    for (const route of app.adminRouteTable.list()) expect([...route.config.roles].sort()).toEqual([...EXPECTED[`${route.method} ${route.url}`]!].sort());
  });

  it('gives each role exactly its access: 403 outside it (audited), never 401 or 403 inside it', async () => {
    const denied: string[] = [];
    for (const route of app.adminRouteTable.list()) {
      for (const role of ALL) {
        const res = await fetch(`${base}${concrete(route.url)}`, {
          method: route.method,
          headers: { authorization: `Bearer ${keys[role].key}`, ...(route.method === 'POST' ? { 'content-type': 'application/json' } : {}) },
          ...(route.method === 'POST' ? { body: '{}' } : {}),
        });
        const where = `${role} → ${route.method} ${route.url}: ${res.status}`;
        if (route.config.roles.includes(role)) {
          expect([where, res.status !== 401 && res.status !== 403]).toEqual([where, true]);
        } else {
          expect([where, res.status]).toEqual([where, 403]);
          expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
          denied.push(`key:${keys[role].id} ${route.config.action}`);
        }
        await res.arrayBuffer().catch(() => undefined);
      }
    }
    const entries = await env.services.databases.db.selectFrom('app.audit_log').select(['actor', 'action', 'outcome']).where('outcome', '=', 'denied').execute();
    expect(entries.map((e) => `${e.actor} ${e.action}`).sort()).toEqual(denied.sort());
  });

  it('refuses to start with an admin route that declares no roles', async () => {
    const bare = Fastify();
    void bare.register(async (scope) => {
      requireRouteDecisions(scope, new AdminRouteTable());
      scope.get('/forgotten', async () => 'open to every key');
    });
    await expect(bare.ready()).rejects.toThrow('admin route GET /forgotten must declare config.roles and config.action');
  });
});

import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { createApiKey } from '../../engine/auth/api-keys';
import { buildHttpServer } from '../../engine/http/server';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';

describe('admin API authentication and roles', () => {
  let env: TestServices;
  let app: FastifyInstance;
  let base: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    env = await openTestServices();
    app = await buildHttpServer(env.services);
    base = await listen(app);
    for (const role of ['marketer', 'operator', 'privacy_officer', 'admin'] as const) {
      keys[role] = (await createApiKey(env.services.databases.db, { role, name: `${role} test` })).key;
    }
  });
  afterAll(async () => {
    await app.close();
    await env.close();
  });

  const call = (path: string, key?: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) },
    });

  it('answers 401 with a challenge without a key, with a malformed one and with an unknown one', async () => {
    for (const auth of [undefined, 'not-a-key', 'cfk_unknownunknownunknownunknownunknown']) {
      const res = await call('/admin/v1/whoami', auth);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('Bearer');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    }
  });

  it('identifies the key and its role', async () => {
    const res = await call('/admin/v1/whoami', keys.operator);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ role: 'operator', name: 'operator test' });
  });

  it('answers 403 outside the role and lets the role through', async () => {
    for (const role of ['marketer', 'operator', 'privacy_officer']) {
      const res = await call('/admin/v1/keys', keys[role]);
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({
        error: { code: 'FORBIDDEN', message: `this route needs the role admin; this key has the role ${role}` },
      });
    }
    expect((await call('/admin/v1/keys', keys.admin)).status).toBe(200);
    expect((await call('/admin/v1/queues', keys.admin)).status).toBe(403);
    const queues = await call('/admin/v1/queues', keys.operator);
    expect(queues.status).toBe(200);
    expect(await queues.json()).toMatchObject({ queues: { events: { wait: 0, failed: 0 } } });
  });

  it('creates a key shown once, stored only as a hash, usable at once', async () => {
    const res = await call('/admin/v1/keys', keys.admin, { method: 'POST', body: JSON.stringify({ role: 'marketer', name: 'campaigns' }) });
    expect(res.status).toBe(201);
    const created = (await res.json()) as { key: string; id: string; role: string };
    expect(created.key).toMatch(/^cfk_[A-Za-z0-9_-]{43}$/);
    const stored = await sql<{ row: string }>`select row_to_json(k)::text as row from app.api_keys k where id = ${created.id}`.execute(
      env.services.databases.db,
    );
    expect(stored.rows[0]?.row).not.toContain(created.key.slice(4));
    const listed = await (await call('/admin/v1/keys', keys.admin)).text();
    expect(listed).not.toContain(created.key);
    expect((await call('/admin/v1/whoami', created.key)).status).toBe(200);
  });

  it('rejects a bad body with a 400 naming the field, and writes nothing', async () => {
    const before = await env.services.databases.db.selectFrom('app.api_keys').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    const bad = await call('/admin/v1/keys', keys.admin, { method: 'POST', body: JSON.stringify({ role: 'root' }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: { code: 'VALIDATION_FAILED', message: 'role: expected one of marketer, operator, privacy_officer, admin' },
    });
    const malformed = await call('/admin/v1/keys', keys.admin, { method: 'POST', body: '{"role":' });
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toEqual({ error: { code: 'INVALID_JSON', message: 'the body is not valid JSON' } });
    const extra = await call('/admin/v1/keys', keys.admin, { method: 'POST', body: JSON.stringify({ role: 'admin', admin: true }) });
    expect(extra.status).toBe(400);
    const huge = await call('/admin/v1/keys', keys.admin, { method: 'POST', body: JSON.stringify({ role: 'admin', name: 'x'.repeat(600_000) }) });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('PAYLOAD_TOO_LARGE');
    const after = await env.services.databases.db.selectFrom('app.api_keys').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    expect(after.n).toBe(before.n);
  });

  it('revoked keys are refused', async () => {
    const created = await createApiKey(env.services.databases.db, { role: 'admin' });
    await env.services.databases.db.updateTable('app.api_keys').set({ revoked_at: new Date() }).where('id', '=', created.id).execute();
    expect((await call('/admin/v1/whoami', created.key)).status).toBe(401);
  });
});

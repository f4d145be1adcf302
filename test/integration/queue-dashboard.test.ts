import { randomBytes } from 'node:crypto';
import { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createApiKey, revokeApiKey } from '../../engine/auth/api-keys';
import { SESSION_COOKIE, signSession } from '../../engine/http/admin/session';
import { buildHttpServer } from '../../engine/http/server';
import type { QueueName } from '../../engine/queues/catalog';
import { createRedis } from '../../engine/redis/connection';
import type { Role } from '../../schemas/roles';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';
import { jobTarget } from '../../engine/audit/targets';

const PUBLIC_URL = 'https://admin.example.test';
const FOREIGN = 'https://evil.example';

// Personal data where a careless dead-letter view would show it: in the payload, and in the reason.
const DATA_EMAIL = 'ann.payload@example.com';
const REASON_EMAIL = 'bob.reason@example.com';
const REASON_PHONE = '+48 601 234 567';
const payload = { traits: { email: DATA_EMAIL, name: 'Ann Payload' }, event: 'Signed Up' };
const reason = `SMTP 550 <${REASON_EMAIL}> mailbox unavailable; call ${REASON_PHONE} <script>alert(1)</script>`;

describe('dead letters, retries and the queue dashboard', () => {
  let env: TestServices;
  let app: FastifyInstance;
  let base: string;
  let workerConnection: Redis;
  const keys = {} as Record<Role, { key: string; id: string }>;

  /** A job that failed for good: added, taken as a worker would take it, and failed with `message`. */
  async function failJob(queue: QueueName, name: string, jobId: string, data: unknown, message: string): Promise<void> {
    await env.services.queues.queue(queue).add(name, data, { jobId, attempts: 1 });
    const worker = new Worker(queue, null, { connection: workerConnection, prefix: env.services.queues.prefix, autorun: false });
    worker.on('error', () => {});
    try {
      const token = `test-${randomBytes(4).toString('hex')}`;
      const job = await worker.getNextJob(token);
      expect(job?.id).toBe(jobId);
      await job?.moveToFailed(new Error(message), token);
    } finally {
      await worker.close();
    }
    expect(await env.services.queues.queue(queue).getJobState(jobId)).toBe('failed');
  }

  const bearer = (role: Role) => ({ authorization: `Bearer ${keys[role].key}` });
  const cookie = (token: string) => ({ cookie: `${SESSION_COOKIE}=${token}` });
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers, redirect: 'manual' });
  const post = (path: string, headers: Record<string, string> = {}, body?: string | URLSearchParams) =>
    fetch(`${base}${path}`, { method: 'POST', headers, redirect: 'manual', ...(body === undefined ? {} : { body }) });
  const jobState = (queue: QueueName, id: string) => env.services.queues.queue(queue).getJobState(id);
  const auditRows = (action: string) =>
    env.services.databases.db.selectFrom('app.audit_log').select(['actor', 'target', 'outcome', 'detail']).where('action', '=', action).orderBy('seq').execute();

  async function login(key: string, origin: string | undefined = PUBLIC_URL): Promise<Response> {
    return post('/admin/login', origin ? { origin } : {}, new URLSearchParams({ key }));
  }
  async function sessionOf(key: string): Promise<string> {
    const res = await login(key);
    expect(res.status).toBe(303);
    const set = res.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`));
    const token = set?.split(';')[0]?.slice(SESSION_COOKIE.length + 1);
    if (!token) throw new Error('no session cookie');
    return token;
  }
  const csrfIn = (html: string): string | undefined => /name="csrf" value="([^"]+)"/.exec(html)?.[1];

  beforeAll(async () => {
    env = await openTestServices({ PUBLIC_URL });
    app = await buildHttpServer(env.services);
    base = await listen(app);
    workerConnection = createRedis(env.services.redisEndpoint, 'worker', env.services.log, 'test-dead-letters');
    for (const role of ['marketer', 'operator', 'privacy_officer', 'admin'] as const) {
      const created = await createApiKey(env.services.databases.db, { role, name: `${role} dashboard` });
      keys[role] = { key: created.key, id: created.id };
    }
    await failJob('events', 'ingest', 'dl-1', payload, reason);
    await failJob('maintenance', 'retention', 'm-1', { at: 1 }, 'first');
    await failJob('maintenance', 'retention', 'm-2', { at: 2 }, 'second');
  });
  afterAll(async () => {
    await app.close();
    await workerConnection.quit().catch(() => workerConnection.disconnect());
    await env.close();
  });

  it('shows an operator the counts and the failed job, its reason scrubbed and escaped, never its payload', async () => {
    const res = await get('/admin/v1/dashboard', bearer('operator'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const html = await res.text();
    // Counts per state: events has one failed job (the last column), maintenance two.
    expect(html).toMatch(/<th scope="row"[^>]*>events<\/th>(<td class="n">\d+<\/td>){6}<td class="n">1<\/td>/);
    expect(html).toMatch(/<th scope="row"[^>]*>maintenance<\/th>(<td class="n">\d+<\/td>){6}<td class="n">2<\/td>/);
    expect(html).toContain('<code>dl-1</code>');
    expect(html).toContain('SMTP 550 &lt;[redacted]&gt; mailbox unavailable; call [redacted] &lt;script&gt;alert(1)&lt;/script&gt;');
    for (const secret of [DATA_EMAIL, REASON_EMAIL, REASON_PHONE, 'Ann Payload', 'Signed Up', 'traits']) expect(html).not.toContain(secret);
    // No script, no resource from anywhere.
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href|action)="(https?:)?\/\//);
    // Fetched with a Bearer key: no session, so no retry forms.
    expect(html).not.toContain('/retry');
    expect(html).toContain('/admin/login');
  });

  it('gives the dead letters as JSON: paged, latest first, the listed fields only', async () => {
    const res = await get('/admin/v1/queues/events/failed', bearer('operator'));
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const secret of [DATA_EMAIL, REASON_EMAIL, REASON_PHONE, 'traits', 'stacktrace', 'returnvalue', '"data"', 'Error: ']) expect(text).not.toContain(secret);
    const body = JSON.parse(text) as { queue: string; total: number; start: number; limit: number; jobs: Array<Record<string, unknown>> };
    expect(body).toMatchObject({ queue: 'events', total: 1, start: 0, limit: 20 });
    expect(body.jobs).toHaveLength(1);
    const job = body.jobs[0] as Record<string, unknown>;
    expect(Object.keys(job).sort()).toEqual(['attemptsMade', 'createdAt', 'failedAt', 'failedReason', 'id', 'name', 'processedAt']);
    expect(job).toMatchObject({ id: 'dl-1', name: 'ingest', attemptsMade: 1, failedReason: 'SMTP 550 <[redacted]> mailbox unavailable; call [redacted] <script>alert(1)</script>' });
    for (const at of ['createdAt', 'processedAt', 'failedAt']) expect(new Date(job[at] as string).toISOString()).toBe(job[at]);

    const page = async (query: string) => {
      const r = await get(`/admin/v1/queues/maintenance/failed${query}`, bearer('operator'));
      expect(r.status).toBe(200);
      return ((await r.json()) as { total: number; jobs: Array<{ id: string }> });
    };
    expect((await page('')).jobs.map((j) => j.id)).toEqual(['m-2', 'm-1']);
    expect(await page('?limit=1')).toMatchObject({ total: 2, jobs: [{ id: 'm-2' }] });
    expect(await page('?limit=1&start=1')).toMatchObject({ total: 2, jobs: [{ id: 'm-1' }] });
    expect((await page('?start=2')).jobs).toEqual([]);

    const unknown = await get('/admin/v1/queues/nope/failed', bearer('operator'));
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toEqual({ error: { code: 'VALIDATION_FAILED', message: 'queue: expected one of events, journeys, broadcasts, email, erasure, maintenance' } });
    for (const query of ['?limit=101', '?limit=0', '?limit=x', '?start=-1', '?other=1']) {
      const bad = await get(`/admin/v1/queues/events/failed${query}`, bearer('operator'));
      expect([query, bad.status]).toEqual([query, 400]);
      await bad.arrayBuffer();
    }
  });

  it('refuses the dashboard, the dead letters and retries to every other role', async () => {
    for (const role of ['marketer', 'privacy_officer', 'admin'] as const) {
      for (const [method, path] of [
        ['GET', '/admin/v1/dashboard'],
        ['GET', '/admin/v1/queues/events/failed'],
        ['POST', '/admin/v1/queues/events/jobs/dl-1/retry'],
      ] as const) {
        const res = await fetch(`${base}${path}`, { method, headers: bearer(role) });
        expect([role, path, res.status]).toEqual([role, path, 403]);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
      }
    }
    expect(await jobState('events', 'dl-1')).toBe('failed');
    // A session of another role is refused the same way.
    const session = await sessionOf(keys.marketer.key);
    const res = await get('/admin/v1/dashboard', cookie(session));
    expect(res.status).toBe(403);
    await res.arrayBuffer();
  });

  it('retries a failed job through the API: 404 for no such job, 409 once it is not failed, audited', async () => {
    await failJob('email', 'send', 'r-1', { to: 'carol@example.com' }, 'relay down');
    const missing = await post('/admin/v1/queues/email/jobs/no-such-job/retry', bearer('operator'));
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');

    const retried = await post('/admin/v1/queues/email/jobs/r-1/retry', bearer('operator'));
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ queue: 'email', jobId: 'r-1', state: 'waiting' });
    expect(await jobState('email', 'r-1')).toBe('waiting');

    const again = await post('/admin/v1/queues/email/jobs/r-1/retry', bearer('operator'));
    expect(again.status).toBe(409);
    expect(await again.json()).toEqual({
      error: { code: 'CONFLICT', message: 'job r-1 of the queue email is waiting, not failed: only failed jobs can be retried' },
    });

    const bad = await post('/admin/v1/queues/nope/jobs/r-1/retry', bearer('operator'));
    expect(bad.status).toBe(400);
    await bad.arrayBuffer();

    const entries = (await auditRows('queues.retry')).filter((e) => e.target?.startsWith('job:email/'));
    expect(entries.map((e) => [e.actor, e.target, e.outcome])).toEqual([
      [`key:${keys.operator.id}`, jobTarget(env.services.keys, 'email', 'no-such-job'), 'not_found'],
      [`key:${keys.operator.id}`, jobTarget(env.services.keys, 'email', 'r-1'), 'ok'],
      [`key:${keys.operator.id}`, jobTarget(env.services.keys, 'email', 'r-1'), 'invalid'],
    ]);
  });

  it('signs a browser in with a key: a cookie holding no key, the dashboard, a CSRF-safe retry form, sign-out', async () => {
    await failJob('journeys', 'wake', 'f-1', { profile: 'x' }, 'boom');
    await failJob('journeys', 'wake', 'f-2', { profile: 'y' }, 'boom');

    const form = await get('/admin/login');
    expect(form.status).toBe(200);
    expect(form.headers.get('content-security-policy')).toContain("form-action 'self'");
    const formHtml = await form.text();
    expect(formHtml).toContain('<form method="post" action="/admin/login">');
    expect(formHtml).toContain('type="password"');

    // Refused keys: 401, the same words whatever was wrong, no cookie, nothing audited.
    const revoked = await createApiKey(env.services.databases.db, { role: 'operator' });
    await revokeApiKey(env.services.databases.db, revoked.id);
    const loginsBefore = (await auditRows('admin.login')).length;
    const refusals: string[] = [];
    for (const key of ['', 'not-a-key', `cfk_${randomBytes(32).toString('base64url')}`, revoked.key]) {
      const res = await login(key);
      expect([key, res.status]).toEqual([key, 401]);
      expect(res.headers.getSetCookie()).toEqual([]);
      refusals.push((await res.text()).replace(/<input[^>]*>/g, ''));
    }
    expect(new Set(refusals).size).toBe(1);
    expect(refusals[0]).toContain('That key was not accepted.');
    expect((await auditRows('admin.login')).length).toBe(loginsBefore);

    // From another site: refused.
    const foreign = await login(keys.operator.key, FOREIGN);
    expect(foreign.status).toBe(403);
    expect(foreign.headers.getSetCookie()).toEqual([]);
    await foreign.arrayBuffer();

    const res = await login(keys.operator.key);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/admin/v1/dashboard');
    const [setCookie, ...others] = res.headers.getSetCookie();
    expect(others).toEqual([]);
    expect(setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9._-]+; Path=/admin; Max-Age=28800; HttpOnly; SameSite=Strict; Secure$`));
    expect(setCookie).not.toContain(keys.operator.key.slice(4, 20));
    const session = setCookie?.split(';')[0]?.slice(SESSION_COOKIE.length + 1) as string;
    const logins = await auditRows('admin.login');
    expect(logins.slice(loginsBefore).map((e) => [e.actor, e.target, e.outcome])).toEqual([[`key:${keys.operator.id}`, `key:${keys.operator.id}`, 'ok']]);

    // The cookie opens the browser routes only.
    const page = await get('/admin/v1/dashboard', cookie(session));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<form method="post" action="/admin/v1/queues/journeys/jobs/f-1/retry">');
    expect(html).toContain('<form method="post" action="/admin/logout">');
    const csrf = csrfIn(html) as string;
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    for (const path of ['/admin/v1/queues', '/admin/v1/queues/journeys/failed', '/admin/v1/whoami']) {
      const other = await get(path, cookie(session));
      expect([path, other.status]).toEqual([path, 401]);
      await other.arrayBuffer();
    }

    // The form without its token, with a wrong one, as JSON, from another site: 403, nothing retried.
    const retryPath = '/admin/v1/queues/journeys/jobs/f-1/retry';
    const attempts: Array<[string, Record<string, string>, string | URLSearchParams | undefined]> = [
      ['no token', { origin: PUBLIC_URL }, new URLSearchParams({})],
      ['no body', { origin: PUBLIC_URL }, undefined],
      ['wrong token', { origin: PUBLIC_URL }, new URLSearchParams({ csrf: `${csrf.slice(0, -2)}AA` })],
      ['token as JSON', { origin: PUBLIC_URL, 'content-type': 'application/json' }, JSON.stringify({ csrf })],
      ['foreign origin', { origin: FOREIGN }, new URLSearchParams({ csrf })],
      ['null origin', { origin: 'null' }, new URLSearchParams({ csrf })],
    ];
    const denied = async () => (await auditRows('queues.retry')).filter((e) => e.outcome === 'denied' && e.actor === `key:${keys.operator.id}`).length;
    const deniedBefore = await denied();
    for (const [what, headers, body] of attempts) {
      const forged = await post(retryPath, { ...cookie(session), ...headers }, body);
      expect([what, forged.status]).toEqual([what, 403]);
      expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    }
    expect(await jobState('journeys', 'f-1')).toBe('failed');
    // Each refusal is in the audit log.
    expect(await denied()).toBe(deniedBefore + attempts.length);

    // A CSRF token of another session does not fit this one.
    const second = await createApiKey(env.services.databases.db, { role: 'operator', name: 'second operator' });
    const secondCsrf = csrfIn(await (await get('/admin/v1/dashboard', cookie(await sessionOf(second.key)))).text()) as string;
    expect(secondCsrf).not.toBe(csrf);
    const mixed = await post(retryPath, { ...cookie(session), origin: PUBLIC_URL }, new URLSearchParams({ csrf: secondCsrf }));
    expect(mixed.status).toBe(403);
    await mixed.arrayBuffer();
    expect(await jobState('journeys', 'f-1')).toBe('failed');

    // With the token and our Origin: retried, and back to the dashboard.
    const ok = await post(retryPath, { ...cookie(session), origin: PUBLIC_URL }, new URLSearchParams({ csrf }));
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/admin/v1/dashboard');
    expect(await jobState('journeys', 'f-1')).toBe('waiting');
    // Browsers that send no Origin on a same-origin form are let through on the token alone.
    const noOrigin = await post('/admin/v1/queues/journeys/jobs/f-2/retry', cookie(session), new URLSearchParams({ csrf }));
    expect(noOrigin.status).toBe(303);
    expect(await jobState('journeys', 'f-2')).toBe('waiting');
    const retries = (await auditRows('queues.retry')).filter((e) => e.target?.startsWith('job:journeys/'));
    expect(retries.map((e) => [e.actor, e.target, e.outcome])).toEqual([
      [`key:${keys.operator.id}`, jobTarget(env.services.keys, 'journeys', 'f-1'), 'ok'],
      [`key:${keys.operator.id}`, jobTarget(env.services.keys, 'journeys', 'f-2'), 'ok'],
    ]);

    // Sign-out clears the cookie and goes back to the login page.
    const out = await post('/admin/logout', { ...cookie(session), origin: PUBLIC_URL });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/admin/login');
    expect(out.headers.getSetCookie()).toEqual([`${SESSION_COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict; Secure`]);
  });

  it("ends a session when its key is revoked or expires, and refuses forged, stale and foreign-signed cookies", async () => {
    const key = await createApiKey(env.services.databases.db, { role: 'operator', name: 'short-lived' });
    const session = await sessionOf(key.key);
    expect((await get('/admin/v1/dashboard', cookie(session))).status).toBe(200);
    await revokeApiKey(env.services.databases.db, key.id);
    const after = await get('/admin/v1/dashboard', cookie(session));
    expect(after.status).toBe(401);
    expect(((await after.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    // A browser asking for the page is sent to sign in again.
    const browser = await get('/admin/v1/dashboard', { ...cookie(session), accept: 'text/html,application/xhtml+xml' });
    expect(browser.status).toBe(303);
    expect(browser.headers.get('location')).toBe('/admin/login');

    const expiring = await createApiKey(env.services.databases.db, { role: 'operator' });
    const expiringSession = await sessionOf(expiring.key);
    await env.services.databases.db.updateTable('app.api_keys').set({ expires_at: new Date(Date.now() - 1000) }).where('id', '=', expiring.id).execute();
    expect((await get('/admin/v1/dashboard', cookie(expiringSession))).status).toBe(401);

    const linkSigning = env.services.keys.linkSigning;
    const valid = signSession(linkSigning, keys.operator.id).token;
    expect((await get('/admin/v1/dashboard', cookie(valid))).status).toBe(200);
    const [version, id, expires, mac] = valid.split('.') as [string, string, string, string];
    const forged = [
      signSession(linkSigning, keys.operator.id, Date.now() - 9 * 60 * 60 * 1000).token, // expired an hour ago
      signSession(randomBytes(32), keys.operator.id).token, // another deployment's key
      [version, keys.admin.id, expires, mac].join('.'), // another key id under the same signature
      [version, id, String(Number(expires) + 3600), mac].join('.'), // extended
      `${valid}x`,
      keys.operator.key, // the API key itself is not a session
    ];
    for (const token of forged) {
      const res = await get('/admin/v1/dashboard', cookie(token));
      expect([token, res.status]).toEqual([token, 401]);
      await res.arrayBuffer();
    }
    // A Bearer header, even a bad one, wins over the cookie: the cookie only stands in for a missing header.
    const both = await get('/admin/v1/dashboard', { ...cookie(valid), authorization: 'Bearer cfk_wrong' });
    expect(both.status).toBe(401);
    await both.arrayBuffer();
  });
});

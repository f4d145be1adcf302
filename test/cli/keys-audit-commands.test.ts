import { sql } from 'kysely';
import { createApiKey } from '../../engine/auth/api-keys';
import { appendAudit } from '../../engine/audit/append';
import { buildHttpServer } from '../../engine/http/server';
import { runCli } from '../support/cli';
import { testEnv } from '../support/config';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';

describe('consentflow keys and audit commands', () => {
  let env: TestServices;
  let cliEnv: Record<string, string | undefined>;
  const db = () => env.services.databases.db;

  beforeAll(async () => {
    const base = testEnv();
    env = await openTestServices(base);
    cliEnv = { ...base, DATABASE_URL: env.database.url };
  });
  afterAll(async () => {
    await env.close();
  });

  it('creates a key that expires, lists its state, revokes it at once, and audits both', async () => {
    const app = await buildHttpServer(env.services);
    const base = await listen(app);
    try {
      const created = runCli(['keys', 'create', '--role', 'operator', '--name', 'contractor', '--expires-in', '30d', '--json'], cliEnv);
      expect(created.stderr).toBe('');
      const key = JSON.parse(created.stdout) as { id: string; key: string; expiresAt: string };
      const days = (Date.parse(key.expiresAt) - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(29.9);
      expect(days).toBeLessThanOrEqual(30);
      const whoami = () => fetch(`${base}/admin/v1/whoami`, { headers: { authorization: `Bearer ${key.key}` } });
      expect((await whoami()).status).toBe(200);

      const listed = runCli(['keys', 'list'], cliEnv).stdout;
      expect(listed).toMatch(new RegExp(`${key.id}\\s+operator\\s+cfk_\\S+…\\s+active\\s+expires ${key.expiresAt.slice(0, 10)}\\s+last used \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+contractor`));

      const revoked = runCli(['keys', 'revoke', key.id], cliEnv);
      expect(revoked.stdout).toBe(`revoked key ${key.id} ("contractor"): it is refused from now on\n`);
      expect((await whoami()).status).toBe(401);
      expect(runCli(['keys', 'revoke', key.id], cliEnv).stdout).toContain('was already revoked');
      expect(runCli(['keys', 'list'], cliEnv).stdout).toMatch(new RegExp(`${key.id}\\s+operator\\s+cfk_\\S+…\\s+revoked`));
      const missing = runCli(['keys', 'revoke', '00000000-0000-4000-8000-000000000000'], cliEnv);
      expect([missing.status, missing.stderr]).toEqual([1, 'consentflow: no API key has the id 00000000-0000-4000-8000-000000000000 (see `consentflow keys list`)\n']);

      const entries = await db().selectFrom('app.audit_log').select(['action', 'target', 'outcome', 'actor']).where('target', '=', `key:${key.id}`).orderBy('seq').execute();
      expect(entries.map((e) => `${e.action} ${e.outcome}`)).toEqual(['keys.create ok', 'keys.revoke ok', 'keys.revoke ok']);
      expect(entries.every((e) => /^cli:uid:\d+$/.test(e.actor))).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('refuses an expired key like an unknown one', async () => {
    const app = await buildHttpServer(env.services);
    const base = await listen(app);
    try {
      const key = await createApiKey(db(), { role: 'admin', expiresAt: new Date(Date.now() + 60_000) });
      expect((await fetch(`${base}/admin/v1/keys`, { headers: { authorization: `Bearer ${key.key}` } })).status).toBe(200);
      await sql`update app.api_keys set expires_at = now() - interval '1 second' where id = ${key.id}`.execute(db());
      const res = await fetch(`${base}/admin/v1/keys`, { headers: { authorization: `Bearer ${key.key}` } });
      expect(res.status).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('names what is wrong with bad options and creates nothing', async () => {
    const before = (await db().selectFrom('app.api_keys').select('id').execute()).length;
    const cases: Array<[string[], string]> = [
      [['keys', 'create', '--role', 'admin', '--expires-in', '90'], "consentflow: --expires-in '90': expected a number of days from 1 to 3650, e.g. 90d\n"],
      [['keys', 'create', '--role', 'admin', '--expires-in', '4000d'], "consentflow: --expires-in '4000d': expected at most 3650d (ten years)\n"],
      [['keys', 'create', '--role', 'admin', '--expires-at', '2020-01-01T00:00:00Z'], "consentflow: --expires-at '2020-01-01T00:00:00Z': expected a time in the future\n"],
      [['keys', 'create', '--role', 'admin', '--expires-at', 'tomorrow'], "consentflow: --expires-at 'tomorrow': expected an ISO 8601 time with a zone, e.g. 2027-03-01T00:00:00Z\n"],
      [['keys', 'create', '--role', 'admin', '--expires-at', '2030-01-01T00:00:00Z', '--expires-in', '9d'], 'consentflow: give --expires-at or --expires-in, not both\n'],
      [['keys', 'revoke', 'nope'], "consentflow: ID 'nope': expected an API key id (a uuid, as `consentflow keys list` prints)\n"],
    ];
    for (const [args, stderr] of cases) {
      const run = runCli(args, cliEnv);
      expect([args.join(' '), run.status, run.stderr]).toEqual([args.join(' '), 1, stderr]);
    }
    expect((await db().selectFrom('app.api_keys').select('id').execute()).length).toBe(before);
  });

  it('audit verify finds an edited entry and a removed one, with their position, and a removed newest entry against a kept head', async () => {
    for (let i = 0; i < 6; i += 1) {
      await appendAudit(db(), env.services.keys, [{ actor: 'key:00000000-0000-4000-8000-000000000001', action: 'subject.export', target: `subject:t${i}`, outcome: 'ok', reason: `ticket ${i}`, detail: { decrypted: true, n: i } }]);
    }
    const whole = runCli(['audit', 'verify', '--json'], cliEnv);
    expect(whole.status).toBe(0);
    const first = JSON.parse(whole.stdout) as { ok: boolean; entries: number; head: { seq: string; hash: string } };
    expect(first.ok).toBe(true);
    const { seq: headSeq, hash: headHash } = first.head;

    // The log refuses changes through SQL...
    await expect(sql`update app.audit_log set reason = 'nothing to see' where seq = 3`.execute(db())).rejects.toThrow('app.audit_log is append-only: UPDATE refused');
    await expect(sql`delete from app.audit_log where seq = 3`.execute(db())).rejects.toThrow('app.audit_log is append-only: DELETE refused');
    await expect(sql`truncate app.audit_log`.execute(db())).rejects.toThrow('app.audit_log is append-only: TRUNCATE refused');

    // ...so a tamperer who can switch the triggers off is what the chain is for.
    const tamper = (statement: ReturnType<typeof sql>) =>
      db().transaction().execute(async (trx) => {
        await sql`set local session_replication_role = replica`.execute(trx);
        await statement.execute(trx);
      });
    const offset = Number(headSeq) - 6;
    await tamper(sql`update app.audit_log set reason = 'nothing to see' where seq = ${offset + 3}`);
    const edited = runCli(['audit', 'verify'], cliEnv);
    expect(edited.status).toBe(4);
    expect(edited.stdout).toContain(`AUDIT LOG BROKEN: ${headSeq} entries`);
    expect(edited.stdout).toContain(`entry ${offset + 3}: its content does not match its hash (edited, or written without the chain key)`);

    await tamper(sql`delete from app.audit_log where seq = ${offset + 5}`);
    const removed = runCli(['audit', 'verify'], cliEnv);
    expect(removed.stdout).toContain(`entry ${offset + 6}: entries ${offset + 5} are missing (removed); its previous-entry hash does not match the entry before the gap`);

    await tamper(sql`delete from app.audit_log where seq = ${headSeq}`);
    const cut = runCli(['audit', 'verify', '--head', `${headSeq}:${headHash}`], cliEnv);
    expect(cut.status).toBe(4);
    expect(cut.stdout).toContain(`entry ${headSeq}: the recorded head is missing (the newest entries were removed)`);
    expect(runCli(['audit', 'verify', '--head', 'latest'], cliEnv).stderr).toContain("--head 'latest': expected SEQ:HASH");
  });
});

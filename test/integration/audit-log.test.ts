import { sql } from 'kysely';
import { appendAudit } from '../../engine/audit/append';
import { verifyAuditChain } from '../../engine/audit/verify';
import { subjectTarget } from '../../engine/audit/targets';
import { createApiKey } from '../../engine/auth/api-keys';
import { findProfileId } from '../../engine/identity/lookup';
import { basicAuth, postJson, startTestEngine, type TestEngine } from '../support/engine';
import { rulesLinkingByDefault } from '../support/rules';
import { waitFor } from '../support/wait';

interface AuditPage {
  entries: Array<{ seq: string; actor: string; action: string; target: string | null; outcome: string; reason: string | null; detail: Record<string, unknown> }>;
  next: string | null;
}

describe('the audit log through the admin API', () => {
  let engine: TestEngine;
  let officer: { key: string; id: string };
  let marketer: { key: string; id: string };
  const email = 'Audrey.Audit@Example.com';

  beforeAll(async () => {
    engine = await startTestEngine({ RULES_DIR: rulesLinkingByDefault() });
    officer = await createApiKey(engine.services.databases.db, { role: 'privacy_officer', name: 'dpo' });
    marketer = await createApiKey(engine.services.databases.db, { role: 'marketer', name: 'campaigns' });
  });
  afterAll(async () => {
    await engine.stop();
  });

  const admin = (path: string, key: string, body?: unknown) =>
    body === undefined
      ? fetch(`${engine.url}/admin/v1${path}`, { headers: { authorization: `Bearer ${key}` } })
      : postJson(`${engine.url}/admin/v1${path}`, body, { authorization: `Bearer ${key}` });
  const auditPage = async (query: string, key = officer.key) => {
    const res = await admin(`/audit${query}`, key);
    expect(res.status).toBe(200);
    return (await res.json()) as AuditPage;
  };

  it('records a decrypting look-up with who, whose pseudonym and why, before the answer, and never the person', async () => {
    await postJson(`${engine.url}/v1/identify`, { userId: 'audrey', traits: { email, name: 'Audrey Audit' } }, { authorization: basicAuth(engine.writeKey) });
    const profileId = await waitFor(() => findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'audrey' }]), { what: 'audrey stored' });

    const noReason = await admin('/subjects/lookup', officer.key, { email });
    expect(noReason.status).toBe(400);
    expect(((await noReason.json()) as { error: { message: string } }).error.message).toBe("reason: expected the reason for reading this person's data (e.g. a ticket number)");

    const found = await admin('/subjects/lookup', officer.key, { email, reason: 'ticket 881: access request' });
    expect(found.status).toBe(200);
    expect(found.headers.get('cache-control')).toBe('no-store');
    const report = (await found.json()) as { profileId: string; fields: Array<{ field: string; value: string }> };
    expect(report.profileId).toBe(profileId);
    expect(report.fields.find((f) => f.field === 'email')?.value).toBe(email);
    expect((await admin('/subjects/lookup', officer.key, { email: 'nobody@example.com', reason: 'ticket 882' })).status).toBe(404);
    expect((await admin('/subjects/lookup', marketer.key, { email, reason: 'curious' })).status).toBe(403);

    const page = await auditPage('?action=subject.lookup');
    expect(page.entries.map((e) => [e.outcome, e.actor, e.reason, e.target])).toEqual([
      ['denied', `key:${marketer.id}`, null, null],
      ['not_found', `key:${officer.id}`, 'ticket 882', null],
      ['ok', `key:${officer.id}`, 'ticket 881: access request', subjectTarget(engine.services.keys, profileId)],
      ['invalid', `key:${officer.id}`, null, null],
    ]);
    expect(page.entries[2]?.detail).toMatchObject({ decrypted: true, method: 'POST', route: '/admin/v1/subjects/lookup', status: 200 });
    // By the live profile id, a privacy officer finds the person's entries; the log itself holds no id, name or address.
    const byPerson = await auditPage(`?profileId=${profileId}`);
    expect(byPerson.entries.map((e) => e.action)).toEqual(['subject.lookup']);
    const all = JSON.stringify(await auditPage('?limit=500'));
    for (const needle of [email, email.toLowerCase(), 'Audrey Audit', 'audrey', profileId]) expect(all).not.toContain(needle);
  });

  it('filters by outcome, actor and time, pages newest first, and audits its own reading', async () => {
    const denied = await auditPage(`?outcome=denied&actor=key:${marketer.id}`);
    expect(denied.entries.length).toBeGreaterThan(0);
    expect(denied.entries.every((e) => e.outcome === 'denied' && e.actor === `key:${marketer.id}`)).toBe(true);
    expect((await auditPage('?since=2999-01-01T00:00:00Z')).entries).toEqual([]);

    const first = await auditPage('?limit=2');
    expect(first.entries).toHaveLength(2);
    expect(Number(first.entries[0]!.seq)).toBeGreaterThan(Number(first.entries[1]!.seq));
    const second = await auditPage(`?limit=2&before=${first.next}`);
    expect(Number(second.entries[0]!.seq)).toBeLessThan(Number(first.entries[1]!.seq));
    expect((await auditPage('?action=audit.read')).entries.length).toBeGreaterThanOrEqual(4);

    const bad = await admin('/audit?limit=9000&outcome=maybe', officer.key);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/outcome: expected one of ok, denied, not_found, invalid, failed|limit: expected a number from 1 to 500/);
    expect((await admin('/audit', marketer.key)).status).toBe(403);
    expect((await verifyAuditChain(engine.services.databases.db, engine.services.keys)).ok).toBe(true);
  });

  it('stores what it hashed: odd text and JSON still verify, and a reason that is not text is refused', async () => {
    const lone = await admin('/subjects/lookup', officer.key, { email, reason: 'ticket \ud800 12' });
    expect(lone.status).toBe(400);
    expect(((await lone.json()) as { error: { message: string } }).error.message).toBe('reason: expected well-formed text (a lone UTF-16 surrogate is not a character)');
    // A reason whose scrubbing lengthens it past the limit with an emoji on the cut; a detail with
    // undefined, a Date, a NUL and a lone surrogate: each is stored as it was hashed.
    const long = `${'a'.repeat(470)} ann@example.com 😀😀😀😀😀😀`;
    await appendAudit(engine.services.databases.db, engine.services.keys, [
      { actor: 'worker:test', action: 'test.odd', outcome: 'ok', reason: long, detail: { missing: undefined, at: new Date(0), nul: 'a\u0000b', lone: 'x\udc00y', nested: [{ z: 1, a: 2 }] } },
    ]);
    const [stored] = await engine.services.databases.db.selectFrom('app.audit_log').selectAll().where('action', '=', 'test.odd').execute();
    expect([...(stored?.reason ?? '')].length).toBeLessThanOrEqual(500);
    expect(stored?.reason).not.toContain('ann@example.com');
    expect(stored?.detail).toEqual({ at: '1970-01-01T00:00:00.000Z', nul: 'ab', lone: 'x\ufffdy', nested: [{ z: 1, a: 2 }] });
    expect(await verifyAuditChain(engine.services.databases.db, engine.services.keys)).toMatchObject({ ok: true, problems: [] });
    expect((await admin('/audit?before=99999999999999999999', officer.key)).status).toBe(400);
  });

  it('commits a key with its audit entry or not at all', async () => {
    const admins = await createApiKey(engine.services.databases.db, { role: 'admin', name: 'keys admin' });
    const db = engine.services.databases.db;
    const count = async () => (await db.selectFrom('app.api_keys').select('id').execute()).length;
    const before = await count();
    await sql`alter table app.audit_log add constraint test_refuse_keys check (action <> 'keys.create') not valid`.execute(db);
    try {
      const res = await admin('/keys', admins.key, { role: 'marketer', name: 'never audited' });
      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain('cfk_');
    } finally {
      await sql`alter table app.audit_log drop constraint test_refuse_keys`.execute(db);
    }
    expect(await count()).toBe(before);
    const ok = await admin('/keys', admins.key, { role: 'marketer', name: 'audited' });
    expect(ok.status).toBe(201);
    const created = (await ok.json()) as { id: string };
    const entries = await db.selectFrom('app.audit_log').select(['action', 'outcome', 'target']).where('target', '=', `key:${created.id}`).execute();
    expect(entries).toEqual([{ action: 'keys.create', outcome: 'ok', target: `key:${created.id}` }]);
  });

  it('does not let a response with decrypted data leave when its entry cannot be written', async () => {
    const db = engine.services.databases.db;
    const before = await db.selectFrom('app.audit_log').select('seq').execute();
    // An entry whose action the table refuses stands in for a failing audit store.
    await sql`alter table app.audit_log add constraint test_refuse_lookups check (action <> 'subject.lookup') not valid`.execute(db);
    try {
      const res = await admin('/subjects/lookup', officer.key, { email, reason: 'ticket 883' });
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(text).not.toContain(email);
      expect(text).not.toContain('Audrey');
    } finally {
      await sql`alter table app.audit_log drop constraint test_refuse_lookups`.execute(db);
    }
    expect((await db.selectFrom('app.audit_log').select('seq').execute()).length).toBe(before.length);
  });
});

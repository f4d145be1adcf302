import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { subjectTarget } from '../../engine/audit/targets';
import { createApiKey } from '../../engine/auth/api-keys';
import { buildHttpServer } from '../../engine/http/server';
import { identityKey } from '../../engine/identity/keys';
import { findProfileId } from '../../engine/identity/lookup';
import { describeSubject } from '../../engine/identity/subject';
import type { Role } from '../../schemas/roles';
import { postJson } from '../support/engine';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';

/** Rows in every table a person's data could land in: what "nothing partial" is checked against. */
async function counts(env: TestServices): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of ['app.profiles', 'app.consent_ledger', 'app.event_receipts', 'app.events', 'app.event_counts', 'app.audit_log', 'vault.identities', 'vault.subject_fields', 'vault.subject_keys']) {
    const { rows } = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(table)}`.execute(env.services.databases.db);
    out[table] = Number(rows[0]?.n);
  }
  return out;
}

describe('POST /admin/v1/subjects: a person typed in', () => {
  let env: TestServices;
  let app: FastifyInstance;
  let base: string;
  const keys = {} as Record<Role, string>;

  beforeAll(async () => {
    env = await openTestServices();
    app = await buildHttpServer(env.services);
    base = await listen(app);
    for (const role of ['marketer', 'operator', 'privacy_officer', 'admin'] as const) {
      keys[role] = (await createApiKey(env.services.databases.db, { role, name: role })).key;
    }
  });
  afterAll(async () => {
    await app.close();
    await env.close();
  });

  const add = (body: unknown, role: Role = 'marketer') => postJson(`${base}/admin/v1/subjects`, body, { authorization: `Bearer ${keys[role]}` });
  const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; message: string } }).error;

  it('adds a person with source admin, the address in the vault and the consent with its evidence; 201 with the id', async () => {
    const res = await add({
      email: 'Hanna.Marketing@Example.com',
      userId: 'crm-17',
      traits: { firstName: 'Hanna', plan: 'pro', country: 'PL' },
      consent: { grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, reference: 'signed form 2026/118' },
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string; created: boolean };
    expect(body).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), created: true });
    const { db } = env.services.databases;
    const source = await db.selectFrom('app.sources').select(['id', 'name', 'revoked_at']).where('name', '=', 'admin').executeTakeFirstOrThrow();
    // The engine's own source: never listed, and no write key can authenticate as it.
    expect(source.revoked_at).not.toBeNull();
    const report = await describeSubject(env.services.databases, env.services.keys, { email: 'hanna.marketing@example.com' });
    expect(report?.profileId).toBe(body.id);
    expect(report?.fields.map((f) => [f.field, f.value, f.sourceId])).toEqual([
      ['email', 'Hanna.Marketing@example.com', source.id], // the domain as the address rule gives it back
      ['firstName', 'Hanna', source.id],
    ]);
    expect(report?.traits).toMatchObject({ plan: { v: 'pro', src: source.id }, country: { v: 'PL', src: source.id } });
    expect(report?.identifiers.map((i) => [i.kind, i.sourceId]).sort()).toEqual([['email', source.id], ['user', source.id]]);
    const ledger = await db.selectFrom('app.consent_ledger').selectAll().where('profile_id', '=', body.id).orderBy('purpose').execute();
    expect(ledger.map((l) => [l.purpose, l.decision, l.method, l.source_kind, l.notice_id, l.notice_version, l.source_id])).toEqual([
      ['analytics', 'granted', 'admin', 'admin', 'cookie_banner', 1, source.id],
      ['profiling', 'granted', 'admin', 'admin', 'cookie_banner', 1, source.id],
    ]);
    expect(ledger[0]?.source_ref).toMatch(/^key [0-9a-f-]{36}: signed form 2026\/118$/);
    // Audited with the person's keyed pseudonym, never the address.
    const audit = await db.selectFrom('app.audit_log').selectAll().where('action', '=', 'subject.create').execute();
    expect(audit.map((a) => [a.outcome, a.target, (a.detail as { status: number }).status])).toEqual([['ok', subjectTarget(env.services.keys, body.id), 201]]);
    expect(JSON.stringify(audit)).not.toMatch(/hanna|crm-17/i);
  });

  it('answers 200 with the same id when the person is already known, and updates them', async () => {
    const first = (await (await add({ userId: 'repeat-1', traits: { plan: 'free' } })).json()) as { id: string };
    const again = await add({ userId: 'repeat-1', email: 'repeat@example.com', traits: { plan: 'team' } }, 'privacy_officer');
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ id: first.id, created: false });
    const report = await describeSubject(env.services.databases, env.services.keys, { email: 'repeat@example.com' });
    expect(report?.profileId).toBe(first.id);
    expect(report?.traits.plan?.v).toBe('team');
  });

  it('answers 400 naming the field, and writes nothing', async () => {
    const before = await counts(env);
    const cases: Array<[unknown, string]> = [
      [{ traits: { plan: 'pro' } }, 'email: expected email or userId: who this person is'],
      [{ email: 'Ann <ann@example.com>' }, 'email: expected one plain email address local@domain'],
      [{ email: 'ann@example.com', traits: { favouriteColour: 'red' } }, 'traits.favouriteColour: not a trait rules/properties.yaml keeps'],
      [{ email: 'ann@example.com', traits: { firstName: 'Ann\r\nBcc: x@example.com' } }, 'traits.firstName: control characters are not allowed'],
      [{ email: 'ann@example.com', traits: { plan: { nested: true } } }, 'traits.plan: expected a string, a number or true/false'],
      [{ email: 'ann@example.com', extra: 1 }, 'Unrecognized key'],
      [{ email: 'ann@example.com', consent: { grant: ['analytics'], notice: { id: 'cookie_banner', version: 7 }, reference: 'form 1' } }, 'consent: notice "cookie_banner" has no version 7'],
      [{ email: 'ann@example.com', consent: { grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 }, reference: 'form 1' } }, 'consent: email_marketing is granted only by double opt-in'],
      [{ email: 'ann@example.com', consent: { grant: ['analytics'], notice: { id: 'cookie_banner', version: 1 } } }, 'consent.reference:'],
    ];
    for (const [body, message] of cases) {
      const res = await add(body);
      const where = JSON.stringify(body);
      expect([where, res.status]).toEqual([where, 400]);
      const error = await errorOf(res);
      expect([where, error.code]).toEqual([where, 'VALIDATION_FAILED']);
      expect([where, error.message]).toEqual([where, expect.stringContaining(message)]);
    }
    const after = await counts(env);
    // Each refusal is audited (outcome invalid); nothing else changed.
    expect({ ...after, 'app.audit_log': before['app.audit_log'] }).toEqual(before);
    expect(after['app.audit_log']).toBe((before['app.audit_log'] ?? 0) + cases.length);
  });

  it('refuses other roles with 403, and writes nothing about the person', async () => {
    for (const role of ['admin', 'operator'] as const) {
      const res = await add({ email: 'denied@example.com' }, role);
      expect(res.status).toBe(403);
      expect((await errorOf(res)).code).toBe('FORBIDDEN');
    }
    expect(await findProfileId(env.services.databases.vaultDb, env.services.keys, [{ email: 'denied@example.com' }])).toBeUndefined();
  });

  it('answers 409 for an erased person (suppression list) and one who objected, and adds nothing', async () => {
    const { db } = env.services.databases;
    const hash = identityKey(env.services.keys.pseudonym, 'email', 'gone@example.com').hash;
    await db.insertInto('app.suppressions').values({ hash, reason: 'erased', detail: null }).execute();
    const erased = await add({ email: 'Gone@Example.com', traits: { firstName: 'Gone' } });
    expect(erased.status).toBe(409);
    expect((await errorOf(erased)).message).toContain('this person was erased (GDPR Art. 17)');
    expect(await findProfileId(env.services.databases.vaultDb, env.services.keys, [{ email: 'gone@example.com' }])).toBeUndefined();

    const id = ((await (await add({ userId: 'objector' })).json()) as { id: string }).id;
    await db
      .insertInto('app.consent_ledger')
      .values({ profile_id: id, purpose: 'email_marketing', decision: 'objected', occurred_at: new Date(), source_kind: 'admin', method: 'admin', merged_from: null })
      .execute();
    const objected = await add({ userId: 'objector', traits: { plan: 'pro' } });
    expect(objected.status).toBe(409);
    expect((await errorOf(objected)).message).toContain('objected to email_marketing (GDPR Art. 21)');
  });

  it('writes the person and the audit entry together: when the entry is refused, nothing of the person is left', async () => {
    const { db } = env.services.databases;
    const before = await counts(env);
    await sql`alter table app.audit_log add constraint test_refuse_create check (action <> 'subject.create') not valid`.execute(db);
    try {
      const res = await add({ email: 'atomic@example.com', userId: 'atomic', traits: { firstName: 'Atom' } });
      expect(res.status).toBe(500);
    } finally {
      await sql`alter table app.audit_log drop constraint test_refuse_create`.execute(db);
    }
    expect(await counts(env)).toEqual(before);
    expect(await findProfileId(env.services.databases.vaultDb, env.services.keys, [{ email: 'atomic@example.com' }])).toBeUndefined();
  });
});

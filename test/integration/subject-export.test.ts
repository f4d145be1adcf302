import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { sql } from 'kysely';
import { z } from 'zod';
import { createApiKey } from '../../engine/auth/api-keys';
import { appendLedger } from '../../engine/consent/ledger';
import { applyProfileMerges, insertEvents, upsertProfiles } from '../../engine/events/app-writes';
import { markMergesApplied } from '../../engine/events/merges';
import { EventPartitions } from '../../engine/events/partitions';
import { findProfileId } from '../../engine/identity/lookup';
import { PAGE_SIZE } from '../../engine/privacy/export/pages';
import { SUBJECT_EXPORT_SCHEMA_ID, SubjectExport } from '../../schemas/subject-export';
import { renderJsonSchema } from '../../scripts/generate-json-schemas';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForReceipts } from '../support/engine';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';
import { subjectTarget } from '../../engine/audit/targets';

const SCHEMA_FILE = path.resolve(__dirname, '../../schemas/json/subject-export.schema.json');

/** The published JSON Schema, checked by a real JSON Schema (2020-12) validator, not by zod. */
function publishedSchemaValidator() {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  return ajv.compile(JSON.parse(fs.readFileSync(SCHEMA_FILE, 'utf8')) as object);
}

/**
 * The subject export (GDPR Art. 15, 20) on the shipped rules, through the real API, queues,
 * PostgreSQL and SMTP server: two people, one exported, nothing of the other in the document.
 */
describe('POST /admin/v1/subjects/export', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  let officer: string;
  let marketer: string;
  const validate = publishedSchemaValidator();
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url }, ['events', 'email']);
    officer = (await createApiKey(engine.services.databases.db, { role: 'privacy_officer', name: 'dpo' })).key;
    marketer = (await createApiKey(engine.services.databases.db, { role: 'marketer', name: 'marketing' })).key;
  });
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });

  const db = () => engine.services.databases.db;
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });
  // Every export states its reason (audited); the tests of other things give a routine one.
  const withReason = (body: unknown) => (body !== null && typeof body === 'object' && !('reason' in body) ? { reason: 'ticket 1: access request', ...body } : body);
  const exportRequest = (body: unknown, key = officer) => postJson(`${engine.url}/admin/v1/subjects/export`, withReason(body), { authorization: `Bearer ${key}` });
  const profileOf = async (userId: string) => (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }])) as string;

  /** A person as a site makes one: consent from the banner, an identify, a few events. */
  async function person(p: { userId: string; email: string; name: string; prefix: string; event: string }): Promise<string[]> {
    const consent = await postJson(
      `${engine.url}/v1/consent`,
      { userId: p.userId, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner', messageId: `${p.prefix}-consent` },
      auth(),
    );
    expect(consent.status).toBe(200);
    const ids = [`${p.prefix}-identify`, `${p.prefix}-t1`, `${p.prefix}-t2`, `${p.prefix}-t3`];
    expect(
      (await postJson(`${engine.url}/v1/identify`, { userId: p.userId, messageId: ids[0], traits: { email: p.email, name: p.name, plan: 'pro' } }, auth())).status,
    ).toBe(200);
    for (const [i, messageId] of ids.slice(1).entries()) {
      const res = await postJson(`${engine.url}/v1/track`, { userId: p.userId, messageId, event: p.event, properties: { order_id: `${p.prefix}-order-${i + 1}`, total: 10 * (i + 1), currency: 'EUR' } }, auth());
      expect(res.status).toBe(200);
    }
    await waitForReceipts(engine.services, ids);
    return ids;
  }

  async function exportOf(body: Record<string, unknown>): Promise<{ text: string; doc: SubjectExport; res: Response }> {
    const res = await exportRequest(body);
    expect(res.status).toBe(200);
    const text = await res.text();
    const json = JSON.parse(text) as unknown;
    if (!validate(json)) throw new Error(`the export does not match ${SCHEMA_FILE}: ${JSON.stringify(validate.errors?.slice(0, 5))}`);
    return { text, doc: SubjectExport.parse(json), res };
  }

  const ada = { userId: 'export-ada', email: 'ada.lovelace@example.com', name: 'Ada Lovelace', prefix: 'xa', event: 'Order Completed' };
  const bob = { userId: 'export-bob', email: 'bob.babbage@example.org', name: 'Bob Babbage', prefix: 'xb', event: 'Export Bob Purchased' };

  it('writes one document of everything about the person, valid against the published schema, and nothing of anyone else', async () => {
    const adaEvents = await person(ada);
    await subscribeWithDoubleOptIn(engine, smtp, { userId: ada.userId, email: ada.email, messageId: 'xa-signup' });
    const adaId = await profileOf(ada.userId);
    // The confirmed sign-up enters newsletter_subscribers, which starts the welcome series.
    await waitFor(async () => (await db().selectFrom('app.scheduled_sends').select('id').where('profile_id', '=', adaId).execute()).length > 0, {
      what: "Ada's welcome email scheduled",
    });
    const bobEvents = await person(bob);
    const bobId = await profileOf(bob.userId);

    const { text, doc, res } = await exportOf({ email: 'Ada.Lovelace@Example.com', reason: 'ticket 4711: access request by letter' });
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="subject-export-${adaId}.json"`);
    // Streamed: no length known up front.
    expect(res.headers.get('content-length')).toBeNull();

    expect(doc).toMatchObject({ $schema: SUBJECT_EXPORT_SCHEMA_ID, format: 'consentflow.subject-export', formatVersion: 1, reason: 'ticket 4711: access request by letter' });
    expect(Math.abs(Date.parse(doc.generatedAt) - Date.now())).toBeLessThan(60_000);

    // Identity: decrypted fields with their source and time; identifier kinds, never the hashes.
    const field = (name: string) => doc.identity.fields.find((f) => f.field === name);
    expect(field('email')).toMatchObject({ value: ada.email, sourceId: engine.sourceId });
    expect(field('name')).toMatchObject({ value: ada.name, sourceId: engine.sourceId });
    expect(doc.identity.identifiers.map((i) => i.kind).sort()).toEqual(['email', 'user']);
    expect(doc.identity.identifiers[0]).not.toHaveProperty('hash');

    // Profile and traits with provenance.
    expect(doc.profile).toMatchObject({ id: adaId, sourceId: engine.sourceId, pendingMerges: [] });
    expect(doc.profile.traits).toContainEqual({ name: 'plan', value: 'pro', sourceId: engine.sourceId, acquiredAt: expect.any(String) });

    // Consent: the ledger with its proof, the current state, the double opt-in.
    const analytics = doc.consent.ledger.find((r) => r.purpose === 'analytics');
    expect(analytics).toMatchObject({
      decision: 'granted',
      method: 'banner',
      source: { kind: 'write_key', id: engine.sourceId },
      notice: { id: 'cookie_banner', version: 1, hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
      ipPrefix: '127.0.0.0',
      eventMessageId: 'xa-consent',
    });
    expect(doc.consent.current.map((c) => [c.purpose, c.decision, c.method])).toEqual([
      ['analytics', 'granted', 'banner'],
      ['email_marketing', 'granted', 'double_opt_in'],
      ['profiling', 'granted', 'banner'],
    ]);
    expect(doc.consent.confirmations).toEqual([
      expect.objectContaining({ status: 'confirmed', purposes: ['email_marketing'], notice: expect.objectContaining({ id: 'newsletter_form' }) }),
    ]);

    // What the rules did: the segment, the campaign, the email (its template, not its text), why.
    expect(doc.segments.map((s) => s.segmentId)).toContain('newsletter_subscribers');
    expect(doc.enrolments).toEqual([expect.objectContaining({ campaignId: 'welcome_series', profileId: adaId })]);
    expect(doc.sends).toEqual([expect.objectContaining({ campaignId: 'welcome_series', template: 'welcome', enrolmentId: doc.enrolments[0]?.id })]);
    expect(doc.sends[0]).not.toHaveProperty('html');
    expect(doc.decisions.length).toBeGreaterThan(0);
    expect(doc.decisions.every((d) => d.profileId === adaId && d.reason.length > 0)).toBe(true);

    // Events, oldest first, with what was stored of them.
    const storedIds = doc.events.map((e) => e.messageId);
    for (const id of adaEvents) expect(storedIds).toContain(id);
    expect(doc.events.find((e) => e.messageId === 'xa-t2')).toMatchObject({
      type: 'track',
      name: ada.event,
      properties: { order_id: 'xa-order-2', total: 20, currency: 'EUR' },
      sourceId: engine.sourceId,
    });
    expect([...doc.events].sort((a, b) => a.occurredAt.localeCompare(b.occurredAt)).map((e) => e.id)).toEqual(doc.events.map((e) => e.id));
    expect(doc.sources).toEqual([{ id: engine.sourceId, name: 'test site' }]);

    // Nothing of Bob: not his address, name, pseudonym, events or their messageIds.
    for (const needle of [bob.email, bob.name, bob.userId, bobId, bob.event, ...bobEvents]) expect(text).not.toContain(needle);
    // The other way round too, so the filter is the person, not luck.
    const { text: bobText } = await exportOf({ userId: bob.userId });
    expect(bobText).toContain(bob.email);
    for (const needle of [ada.email, ada.name, adaId, ada.event, ...adaEvents]) expect(bobText).not.toContain(needle);

    // Decryption outside the email worker is audited: who, whose keyed pseudonym, why; never the address.
    const audited = await db().selectFrom('app.audit_log').selectAll().where('action', '=', 'subject.export').where('target', '=', subjectTarget(engine.services.keys, adaId)).execute();
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({ outcome: 'ok', reason: 'ticket 4711: access request by letter', actor: expect.stringMatching(/^key:[0-9a-f-]{36}$/), detail: { decrypted: true, status: 200 } });
    expect(JSON.stringify(audited)).not.toContain(ada.email);
    expect(JSON.stringify(audited)).not.toContain(adaId);
  });

  it('is for privacy officers only, names the bad field, and says 404 for nobody known', async () => {
    expect((await exportRequest({ userId: ada.userId }, marketer)).status).toBe(403);
    expect((await postJson(`${engine.url}/admin/v1/subjects/export`, { userId: ada.userId })).status).toBe(401);
    const bad = async (body: unknown) => {
      const res = await exportRequest(body);
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { code: string; message: string } }).error;
    };
    expect(await bad({})).toEqual({ code: 'VALIDATION_FAILED', message: 'email: expected exactly one of email, userId, anonymousId' });
    expect(await bad({ email: 'not an address' })).toEqual({ code: 'VALIDATION_FAILED', message: 'email: expected an email address' });
    expect((await bad({ email: ada.email, userId: ada.userId })).message).toBe('email: expected exactly one of email, userId, anonymousId');
    expect((await bad({ userId: ada.userId, reason: '' })).message).toMatch(/^reason: /);
    expect(await bad({ userId: ada.userId, reason: undefined })).toEqual({ code: 'VALIDATION_FAILED', message: "reason: expected the reason for reading this person's data (e.g. a ticket number)" });
    expect((await bad({ userId: ada.userId, format: 'xml' })).message).toMatch(/format/);
    expect((await bad({ anonymousId: ['x'] })).message).toMatch(/^anonymousId: /);
    expect((await bad('{"email":')).code).toBe('INVALID_JSON');

    const unknown = await exportRequest({ email: 'nobody@example.com' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'nobody with that identifier is known; nothing was exported' } });
  });

  it('streams a person with many events page by page, each once and in order, across months and equal times', async () => {
    const userId = 'export-busy';
    await postJson(`${engine.url}/v1/identify`, { userId, messageId: 'busy-identify', traits: { email: 'busy@example.com' } }, auth());
    await waitForReceipts(engine.services, ['busy-identify']);
    const profileId = await profileOf(userId);
    // Two and a half pages of events over three months; a whole page and more share one time, so
    // the keyset must break ties by id across page boundaries.
    const now = Date.now();
    const DAY = 86_400_000;
    const times = Array.from({ length: Math.floor(PAGE_SIZE * 2.5) }, (_, i) =>
      i < PAGE_SIZE + 50 ? new Date(now - 40 * DAY) : new Date(now - 80 * DAY + i * 60_000),
    );
    await new EventPartitions(db()).ensure(times);
    await insertEvents(
      db(),
      times.map((occurredAt, i) => ({
        profileId,
        sourceId: engine.sourceId,
        messageId: `busy-${i}`,
        type: 'track' as const,
        name: 'Busy Clicked',
        occurredAt,
        receivedAt: occurredAt,
        properties: { i },
        context: {},
      })),
    );
    const res = await exportRequest({ userId });
    expect(res.status).toBe(200);
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const doc = SubjectExport.parse(JSON.parse(await res.text()));
    const expected = await sql<{ message_id: string }>`
      select message_id from app.events where profile_id = ${profileId} order by occurred_at, id`.execute(db());
    expect(doc.events.map((e) => e.messageId)).toEqual(expected.rows.map((r) => r.message_id));
    expect(new Set(doc.events.map((e) => e.id)).size).toBe(times.length);
  });

  it('includes the rows of a profile whose merge into the person is still pending, and lists each once while it is applied', async () => {
    const userId = 'export-merging';
    await postJson(`${engine.url}/v1/identify`, { userId, messageId: 'merging-identify', traits: { email: 'merging@example.com' } }, auth());
    await waitForReceipts(engine.services, ['merging-identify']);
    const winner = await profileOf(userId);
    // An anonymous profile the vault already merged into the winner; schema `app` has not caught up
    // (a crash between the two commits with a separate vault database).
    const loser = '0b5e7d3c-1a2b-4c5d-8e9f-0a1b2c3d4e5f';
    const at = new Date(Date.now() - 3_600_000);
    await upsertProfiles(db(), [{ id: loser, sourceId: engine.sourceId, lastSeenAt: at, traits: { colour: { v: 'teal', src: engine.sourceId, at: at.toISOString() } } }]);
    await new EventPartitions(db()).ensure([at]);
    const row = (messageId: string) => ({ profileId: loser, sourceId: engine.sourceId, messageId, type: 'page' as const, name: 'Pricing', occurredAt: at, receivedAt: at, properties: {}, context: {} });
    await insertEvents(db(), [row('loser-1'), row('loser-2')]);
    await appendLedger(db(), [{ profileId: loser, purpose: 'analytics', decision: 'granted', occurredAt: at, sourceKind: 'write_key', sourceId: engine.sourceId, method: 'banner', eventMessageId: 'loser-consent' }]);
    await engine.services.databases.vaultDb.insertInto('vault.profile_merges').values({ loser_id: loser, winner_id: winner }).execute();

    const pending = (await exportOf({ userId })).doc;
    expect(pending.profile.pendingMerges).toEqual([expect.objectContaining({ id: loser, traits: [expect.objectContaining({ name: 'colour', value: 'teal' })] })]);
    expect(pending.events.filter((e) => e.profileId === loser).map((e) => e.messageId).sort()).toEqual(['loser-1', 'loser-2']);
    expect(pending.consent.ledger.filter((r) => r.eventMessageId === 'loser-consent')).toEqual([expect.objectContaining({ profileId: loser })]);
    expect(pending.consent.current).toEqual([expect.objectContaining({ purpose: 'analytics', decision: 'granted' })]);

    // Applied in schema `app`, not yet marked in the vault: the copies are listed, not twice.
    await db().transaction().execute((trx) => applyProfileMerges(trx, [{ loser, winner }]));
    const applying = (await exportOf({ userId })).doc;
    expect(applying.consent.ledger.filter((r) => r.eventMessageId === 'loser-consent')).toEqual([expect.objectContaining({ profileId: winner, mergedFrom: expect.any(String) })]);
    expect(applying.events.filter((e) => e.messageId.startsWith('loser-')).map((e) => e.profileId)).toEqual([winner, winner]);

    // Marked: the winner's id alone finds everything.
    await markMergesApplied(engine.services.databases.vaultDb, [loser]);
    const merged = (await exportOf({ userId })).doc;
    expect(merged.profile.pendingMerges).toEqual([]);
    expect(merged.profile.traits).toContainEqual(expect.objectContaining({ name: 'colour', value: 'teal' }));
    expect(merged.events.filter((e) => e.messageId.startsWith('loser-'))).toHaveLength(2);
    expect(merged.consent.ledger.filter((r) => r.eventMessageId === 'loser-consent')).toHaveLength(1);
  });

  it('publishes the JSON Schema generated from the zod schema', () => {
    const file = fs.readFileSync(SCHEMA_FILE, 'utf8');
    expect(file).toBe(renderJsonSchema(SubjectExport));
    expect(JSON.parse(file)).toMatchObject({ $id: SUBJECT_EXPORT_SCHEMA_ID, $schema: 'https://json-schema.org/draft/2020-12/schema' });
    expect(z.toJSONSchema(SubjectExport, { io: 'input' })).toEqual(JSON.parse(file));
    // The validator the documents pass is not vacuous.
    expect(validate({ $schema: SUBJECT_EXPORT_SCHEMA_ID, format: 'consentflow.subject-export', formatVersion: 1 })).toBe(false);
  });
});

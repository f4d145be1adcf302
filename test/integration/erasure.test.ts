import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Kysely } from 'kysely';
import { createApiKey } from '../../engine/auth/api-keys';
import { runDueAutomation } from '../../engine/automation/run-automation';
import { findProfileId } from '../../engine/identity/lookup';
import { relayOutbox } from '../../engine/outbox/outbox';
import { deepScan } from '../../engine/privacy/erasure/deep-scan';
import { REACHED_THROUGH } from '../../engine/privacy/erasure/person-columns';
import { verifyByIndex } from '../../engine/privacy/erasure/verify';
import { createErasureRequest, erasureRequest } from '../../engine/privacy/erasure/request';
import { runErasure } from '../../engine/privacy/erasure/run-erasure';
import { queueSealingKey, seal } from '../../engine/queues/sealing';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForReceipts } from '../support/engine';
import { expectErased, redisKeysHolding, storeSmallPerson, tablesHolding, traceOf, type Person, type Trace } from '../support/erasure';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';
import { rulesWithoutQuietHours } from '../support/sends';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';

const DAY = 24 * 60 * 60 * 1000;

/** identify (after anonymous page views), 1,000+ events, double opt-in consent and the welcome email. */
async function populate(engine: TestEngine, smtp: TestSmtpServer, person: Person & { anonymousId: string }, events: number): Promise<void> {
  const auth = { authorization: basicAuth(engine.writeKey) };
  // The visitor accepts the cookie banner: their events may be tied to them (analytics).
  const banner = { anonymousId: person.anonymousId, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner', messageId: `${person.userId}-banner` };
  expect((await postJson(`${engine.url}/v1/consent`, banner, auth)).status).toBe(200);
  const page = (i: number) => ({ type: 'page', anonymousId: person.anonymousId, name: 'Pricing', properties: { path: `/pricing/${i}` }, messageId: `${person.userId}-page-${i}` });
  expect((await postJson(`${engine.url}/v1/batch`, { batch: [page(0), page(1)] }, auth)).status).toBe(200);
  await waitFor(async () => (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ anonymousId: person.anonymousId }])) !== undefined, { what: 'the anonymous visitor stored' });
  // The person signs in on another device first, then on this one: the anonymous visitor's profile
  // merges into theirs.
  const identify = (anonymousId: string, n: number) => ({ type: 'identify', userId: person.userId, anonymousId, traits: { email: person.email, firstName: person.firstName, plan: 'pro' }, messageId: `${person.userId}-identify-${n}` });
  expect((await postJson(`${engine.url}/v1/batch`, { batch: [identify(`${person.anonymousId}-phone`, 1)] }, auth)).status).toBe(200);
  await waitFor(async () => (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: person.userId }])) !== undefined, { what: 'the identify stored' });
  expect((await postJson(`${engine.url}/v1/batch`, { batch: [identify(person.anonymousId, 2)] }, auth)).status).toBe(200);
  await waitFor(
    async () =>
      (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ anonymousId: person.anonymousId }])) ===
      (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: person.userId }])),
    { what: 'the anonymous visitor merged into the person' },
  );
  await subscribeWithDoubleOptIn(engine, smtp, { userId: person.userId, email: person.email });
  for (let start = 0; start < events; start += 500) {
    const batch = Array.from({ length: Math.min(500, events - start) }, (_, i) => ({
      type: 'track',
      userId: person.userId,
      event: 'Article Read',
      properties: { article: `a-${start + i}` },
      messageId: `${person.userId}-read-${start + i}`,
    }));
    expect((await postJson(`${engine.url}/v1/batch`, { batch }, auth)).status).toBe(200);
  }
  const profileId = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: person.userId }])) as string;
  await waitFor(
    async () => Number((await engine.services.databases.db.selectFrom('app.events').select((eb) => eb.fn.countAll<string>().as('n')).where('profile_id', '=', profileId).executeTakeFirstOrThrow()).n) >= events,
    { what: `${events} events of ${person.userId} stored`, timeoutMs: 60_000 },
  );
}

describe('erasure: the acid test', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  let officer: string;
  const ola: Person & { anonymousId: string } = { email: 'ola.erased@example.com', userId: `ola-${randomUUID()}`, anonymousId: `anon-${randomUUID()}`, firstName: 'Olgierda' };
  const ben: Person & { anonymousId: string } = { email: 'ben.kept@example.com', userId: `ben-${randomUUID()}`, anonymousId: `anon-${randomUUID()}`, firstName: 'Benedykt' };
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rulesWithoutQuietHours() }, ['events', 'email', 'journeys', 'erasure']);
    officer = (await createApiKey(engine.services.databases.db, { role: 'privacy_officer', name: 'dpo' })).key;
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });

  it('leaves no trace of the person in any table or Redis key, sends nothing more, destroys the key, and signs a receipt; the other person is untouched', async () => {
    const { services } = engine;
    const db = services.databases.db;
    await populate(engine, smtp, ola, 1_050);
    await populate(engine, smtp, ben, 20);
    await waitFor(async () => smtp.messages.find((m) => m.to.includes(ola.email) && m.subject.startsWith('Welcome')), { what: "ola's welcome email" });
    const olaId = (await findProfileId(services.databases.vaultDb, services.keys, [{ userId: ola.userId }])) as string;
    const benId = (await findProfileId(services.databases.vaultDb, services.keys, [{ userId: ben.userId }])) as string;

    // Two days on: the journey schedules its next email, a delayed job in Redis.
    const later = new Date(Date.now() + 2 * DAY + 60_000);
    await db.transaction().execute((trx) => runDueAutomation(trx, { compiled: services.rules.compiled, catalog: services.rules.purposes }, later));
    await relayOutbox(db, services.queues);
    const delayed = await db.selectFrom('app.scheduled_sends').selectAll().where('profile_id', '=', olaId).where('state', '=', 'scheduled').executeTakeFirstOrThrow();
    const emailQueue = new Queue('email', { connection: services.redis, prefix: services.config.queuePrefix });
    expect(await (await emailQueue.getJob(`send-${delayed.id}`))?.getState()).toBe('delayed');

    // A poison batch with one of ola's events: the worker fails it for good, and Redis keeps it (sealed).
    const eventsQueue = new Queue('events', { connection: services.redis, prefix: services.config.queuePrefix });
    const now = new Date().toISOString();
    const poison = {
      events: [{ sourceId: engine.sourceId, messageId: 'poison-1', receivedAt: now, occurredAt: 'yesterday', signals: { gpc: false, dnt: false }, event: { type: 'track', userId: ola.userId, event: 'Broken', traits: { email: ola.email } } }],
    };
    const poisonJob = await eventsQueue.add('ingest', seal(queueSealingKey(services.keys.master), 'events/ingest', poison), { attempts: 1 });
    await waitFor(async () => (await poisonJob.getState()) === 'failed', { what: 'the poison batch failed' });

    expect(await db.selectFrom('app.segment_state').select('segment_id').where('profile_id', '=', olaId).execute()).not.toHaveLength(0);
    expect(smtp.messages.filter((m) => m.to.includes(ola.email)).length).toBeGreaterThanOrEqual(2); // confirmation + welcome

    const trace = await traceOf(services, ola);
    const benTrace = await traceOf(services, ben);
    const appDb = db as unknown as Kysely<unknown>;

    // Before: the test's scan sees the person everywhere the engine's by-index check looks, and the
    // engine's check knows every table the person is in (a table it did not know would fail here).
    const before = await tablesHolding(appDb, ['app', 'vault'], trace.needles);
    const known = await verifyByIndex(services.databases, services.queues, {
      profileIds: trace.profileIds,
      identities: (await services.databases.vaultDb.selectFrom('vault.identities').select(['kind', 'hash']).where('profile_id', 'in', trace.profileIds).execute()).map((i) => ({ kind: i.kind, hash: i.hash.toString('hex') })),
      sendIds: (await db.selectFrom('app.scheduled_sends').select('id').where('profile_id', 'in', trace.profileIds).execute()).map((r) => r.id),
      enrolmentIds: (await db.selectFrom('app.enrolments').select('id').where('profile_id', 'in', trace.profileIds).execute()).map((r) => r.id),
      confirmationIds: (await db.selectFrom('app.consent_confirmations').select('id').where('profile_id', 'in', trace.profileIds).execute()).map((r) => r.id),
      jobs: [],
      vaultCounts: {},
    });
    const knownTables = new Set(known.findings.map((f) => f.where.split('.').slice(0, 2).join('.')));
    for (const table of before.keys()) expect({ table, known: knownTables.has(table) || Object.hasOwn(REACHED_THROUGH, table) }).toEqual({ table, known: true });
    expect(before.has('app.events')).toBe(true);
    expect(before.has('vault.subject_keys')).toBe(true);
    expect((await redisKeysHolding(services, trace.needles)).length).toBeGreaterThan(0);
    const benBefore = await tablesHolding(appDb, ['app', 'vault'], benTrace.needles);

    // The request: committed, answered with an id, run by the erasure worker.
    const asked = await postJson(`${engine.url}/admin/v1/subjects/erase`, { email: ola.email, deep: true }, { authorization: `Bearer ${officer}` });
    expect(asked.status).toBe(202);
    const { id } = (await asked.json()) as { id: string };
    let last: unknown;
    const status = await waitFor(
      async () => {
        const r = await fetch(`${engine.url}/admin/v1/erasures/${id}`, { headers: { authorization: `Bearer ${officer}` } });
        const body = (await r.json()) as { state: string; receipt: Record<string, unknown> | null; signatureValid: boolean | null; lastError: string | null };
        last = body;
        return body.state === 'completed' ? body : undefined;
      },
      { what: 'the erasure completed', timeoutMs: 60_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the request: ${JSON.stringify(last)}`);
    });
    expect(status.signatureValid).toBe(true);
    const receipt = status.receipt as {
      profilesErased: number;
      dataKeysDestroyed: number;
      removed: Record<string, number>;
      verification: { clean: boolean; deep: { clean: boolean } | null };
      suppressed: boolean;
    };
    expect(receipt.verification).toMatchObject({ clean: true, findings: [] });
    expect(receipt.verification.deep?.clean).toBe(true);
    expect(receipt.profilesErased).toBe(trace.profileIds.length);
    expect(receipt.profilesErased).toBeGreaterThanOrEqual(2); // the anonymous visitor merged in
    expect(receipt.dataKeysDestroyed).toBe(1);
    expect(receipt.removed.events).toBeGreaterThanOrEqual(1_050);
    expect(receipt.removed.consent_ledger).toBeGreaterThanOrEqual(1);
    expect(receipt.removed.sends).toBeGreaterThanOrEqual(2);
    expect(receipt.removed.redis_jobs).toBeGreaterThanOrEqual(2); // the delayed send and the poison batch
    expect(receipt.suppressed).toBe(true);
    // The receipt names nobody.
    const receiptText = JSON.stringify(status).toLowerCase();
    for (const n of trace.needles) expect({ needle: n, inReceipt: receiptText.includes(n) }).toEqual({ needle: n, inReceipt: false });

    // The test's own scan: no row of any table and no Redis key holds any of the person's identifiers,
    // but the two remnants kept on purpose: the suppression hash and the tombstones (until they expire).
    const after = await tablesHolding(appDb, ['app', 'vault'], trace.needles);
    expect([...after.keys()].sort()).toEqual(['app.suppressions', 'vault.erasure_tombstones']);
    expect(after.get('app.suppressions')).toEqual([trace.emailHash]);
    const suppression = await db.selectFrom('app.suppressions').selectAll().where('hash', '=', Buffer.from(trace.emailHash, 'hex')).executeTakeFirstOrThrow();
    expect(suppression.reason).toBe('erased');
    expect(await redisKeysHolding(services, trace.needles)).toEqual([]);
    expect(await services.databases.vaultDb.selectFrom('vault.subject_keys').select('profile_id').where('profile_id', 'in', trace.profileIds).execute()).toEqual([]);
    expect(await emailQueue.getJob(`send-${delayed.id}`)).toBeUndefined();
    expect(await poisonJob.getState()).toBe('unknown');

    // The scheduled send never goes out: its time comes, and there is nothing to send.
    const sentBefore = smtp.messages.filter((m) => m.to.includes(ola.email)).length;
    await db.transaction().execute((trx) => runDueAutomation(trx, { compiled: services.rules.compiled, catalog: services.rules.purposes }, new Date(later.getTime() + DAY)));
    expect(await db.selectFrom('app.scheduled_sends').select('id').where('profile_id', '=', olaId).execute()).toEqual([]);
    expect(smtp.messages.filter((m) => m.to.includes(ola.email))).toHaveLength(sentBefore);

    // The other person: exactly as before.
    const benAfter = await tablesHolding(appDb, ['app', 'vault'], benTrace.needles);
    expect(new Map([...benAfter].map(([t, hits]) => [t, hits.length]))).toEqual(new Map([...benBefore].map(([t, hits]) => [t, hits.length])));
    expect(await findProfileId(services.databases.vaultDb, services.keys, [{ userId: ben.userId }])).toBe(benId);

    // The engine's deep scan agrees with the test's.
    const deep = await deepScan(services.databases, services.redis, services.config.queuePrefix, queueSealingKey(services.keys.master), {
      needles: trace.needles,
      allowedSuppressionHashes: [trace.emailHash],
      requestId: id,
    });
    expect(deep.findings).toEqual([]);
    await emailQueue.close();
    await eventsQueue.close();
  }, 180_000);
});

describe('erasure: crashes, repeats and late events', () => {
  let engine: TestEngine;
  const deps = () => ({ ...engine.services, log: engine.services.log });
  beforeAll(async () => {
    engine = await startTestEngine({ RULES_DIR: rulesWithoutQuietHours() }, ['events']);
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
  });

  const person = (tag: string) => storeSmallPerson(engine, tag);
  const expectGone = (p: Person, trace: Trace) => expectErased(engine.services, p, trace);

  it.each([1, 2, 3, 4, 5, 6, 7])('a crash after step %i, then a retry, ends in the same verified result', async (step) => {
    const p = await person(`crash${step}`);
    const trace = await traceOf(engine.services, p);
    const stored = Number(
      (await engine.services.databases.db.selectFrom('app.events').select((eb) => eb.fn.countAll<string>().as('n')).where('profile_id', 'in', trace.profileIds).executeTakeFirstOrThrow()).n,
    );
    const request = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, { identifier: { email: p.email }, origin: 'cli', requestedBy: 'test' });
    if (!request.ok) throw new Error(request.error);
    await expect(
      runErasure(deps(), request.id, {
        afterStep: (n) => {
          if (n === step) throw new Error(`crash after step ${n}`);
        },
      }),
    ).rejects.toThrow(`crash after step ${step}`);
    const half = await erasureRequest(engine.services.databases.db, request.id);
    expect(half).toMatchObject({ state: 'running', step });
    const outcome = await runErasure(deps(), request.id);
    if (outcome.outcome !== 'completed') throw new Error(`expected completed, got ${outcome.outcome}`);
    expect(outcome.receipt.verification.clean).toBe(true);
    expect(outcome.receipt.profilesErased).toBe(1);
    expect(outcome.receipt.dataKeysDestroyed).toBe(1);
    expect(outcome.receipt.removed.events).toBe(stored);
    await expectGone(p, trace);
    const done = await erasureRequest(engine.services.databases.db, request.id);
    expect(done).toMatchObject({ state: 'completed', step: 8, identifier_hash: null, subject_sealed: null, work: {} });
  }, 60_000);

  it('erasing twice is harmless: the second request finds nobody, and says so in its receipt', async () => {
    const p = await person('twice');
    const first = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, { identifier: { userId: p.userId }, origin: 'cli', requestedBy: 'test' });
    if (!first.ok) throw new Error(first.error);
    // Asked again while the first is pending: the same request.
    const again = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, { identifier: { userId: p.userId }, origin: 'cli', requestedBy: 'test' });
    expect(again).toEqual({ ok: true, id: first.id, created: false, state: 'pending' });
    expect((await runErasure(deps(), first.id)).outcome).toBe('completed');
    expect((await runErasure(deps(), first.id)).outcome).toBe('already_completed');
    const second = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, { identifier: { email: p.email }, origin: 'cli', requestedBy: 'test' });
    if (!second.ok) throw new Error(second.error);
    expect(second.created).toBe(true);
    const outcome = await runErasure(deps(), second.id);
    if (outcome.outcome !== 'completed') throw new Error(outcome.outcome);
    expect(outcome.receipt).toMatchObject({ profilesErased: 0, dataKeysDestroyed: 0, verification: { clean: true } });
  }, 60_000);

  it('events queued before the erasure and processed after it, or arriving later, create nothing', async () => {
    const p = await person('late');
    const trace = await traceOf(engine.services, p);
    const auth = { authorization: basicAuth(engine.writeKey) };
    const eventsQueue = new Queue('events', { connection: engine.services.redis, prefix: engine.services.config.queuePrefix });
    // The queue is paused: these wait in Redis while the person is erased.
    await eventsQueue.pause();
    const queued = Array.from({ length: 3 }, (_, i) => ({ type: 'track', userId: p.userId, event: 'Queued', messageId: `queued-${i}-${randomUUID()}` }));
    const other = { type: 'track', userId: `someone-${randomUUID()}`, event: 'Other Person', messageId: `other-${randomUUID()}` };
    expect((await postJson(`${engine.url}/v1/batch`, { batch: [...queued, other] }, auth)).status).toBe(200);
    await waitFor(async () => (await eventsQueue.getWaitingCount()) > 0, { what: 'the batch waiting in Redis' });
    const request = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, { identifier: { email: p.email }, origin: 'cli', requestedBy: 'test' });
    if (!request.ok) throw new Error(request.error);
    const outcome = await runErasure(deps(), request.id);
    if (outcome.outcome !== 'completed') throw new Error(outcome.outcome);
    // A batch waiting for the worker is left to the tombstones (it is not searched: docs/erasure.md).
    expect(outcome.receipt.removed.redis_events_in_batches).toBe(0);
    await eventsQueue.resume();
    // Processed after the erasure: the other person's event is stored, the erased person's dropped.
    await waitForReceipts(engine.services, [other.messageId, ...queued.map((e) => e.messageId)]);
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: p.userId }])).toBeUndefined();
    // (Without consent to analytics, the other person's event is kept as an anonymous count.)
    expect(await engine.services.databases.db.selectFrom('app.event_counts').select('count').where('name', '=', 'Other Person').execute()).toEqual([{ count: '1' }]);

    // Later: the same browser and the same person come back, by cookie, userId and email.
    const late = [
      { type: 'page', anonymousId: p.anonymousId, name: 'Home', messageId: `late-1-${randomUUID()}` },
      { type: 'identify', userId: p.userId, traits: { email: p.email, firstName: p.firstName }, messageId: `late-2-${randomUUID()}` },
      { type: 'track', userId: p.userId, event: 'Came Back', messageId: `late-3-${randomUUID()}` },
    ];
    expect((await postJson(`${engine.url}/v1/batch`, { batch: late }, auth)).status).toBe(200);
    await waitForReceipts(engine.services, late.map((e) => e.messageId));
    await expectGone(p, trace);
    expect(await engine.services.databases.db.selectFrom('app.events').select('id').where('name', 'in', ['Came Back', 'Queued']).execute()).toEqual([]);
    await eventsQueue.close();
  }, 60_000);
});

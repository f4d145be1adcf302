import { randomUUID } from 'node:crypto';
import { Worker } from 'bullmq';
import { createRedis } from '../../engine/redis/connection';
import { createErasureRequest, erasureRequest } from '../../engine/privacy/erasure/request';
import { runErasure } from '../../engine/privacy/erasure/run-erasure';
import { runErasureGroup, type Settled } from '../../engine/privacy/erasure/run-group';
import { type ErasureReceipt, receiptKey, verifyReceipt } from '../../engine/privacy/erasure/receipt';
import { relayOutbox } from '../../engine/outbox/outbox';
import { startTestEngine, type TestEngine } from '../support/engine';
import { expectErased, storeSmallPerson, traceOf, type Person, type Trace } from '../support/erasure';
import { rulesWithoutQuietHours } from '../support/sends';
import { waitFor } from '../support/wait';

/**
 * Grouped erasures (engine/privacy/erasure/run-group.ts): many requests through the eight steps at
 * once. Each person must end as erased as when erased alone, each receipt must count only its own
 * person, and a crash at any step must leave every request where erasing it alone finishes it.
 */

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

let engine: TestEngine;
const deps = () => ({ ...engine.services, log: engine.services.log });

beforeAll(async () => {
  engine = await startTestEngine({ RULES_DIR: rulesWithoutQuietHours() }, ['events']);
}, 60_000);
afterAll(async () => engine.stop());

interface Stored {
  readonly person: Person & { anonymousId: string };
  readonly trace: Trace;
  readonly events: number;
}

async function stored(tag: string): Promise<Stored> {
  const person = await storeSmallPerson(engine, tag);
  const trace = await traceOf(engine.services, person);
  const { n } = await engine.services.databases.db
    .selectFrom('app.events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('profile_id', 'in', trace.profileIds)
    .executeTakeFirstOrThrow();
  return { person, trace, events: Number(n) };
}

async function requestErasure(identifier: { email: string } | { userId: string }): Promise<string> {
  const created = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, { identifier, origin: 'cli', requestedBy: 'test' });
  if (!created.ok) throw new Error(created.error);
  return created.id;
}

function receiptOf(settled: Settled | undefined): ErasureReceipt {
  if (!settled?.ok) throw new Error(`not completed: ${settled ? String(settled.error) : 'not run'}`);
  if (settled.outcome.outcome !== 'completed') throw new Error(settled.outcome.outcome);
  return settled.outcome.receipt;
}

describe('grouped erasures', () => {
  it('erase every person of the group, each receipt counting its own person only', async () => {
    const people = await Promise.all(['g1', 'g2', 'g3', 'g4'].map(stored));
    const ids = await Promise.all(people.map((p) => requestErasure({ email: p.person.email })));
    // The first person asked for twice, by another identifier: erased once, counted once.
    const twice = await requestErasure({ userId: (people[0] as Stored).person.userId });
    const receiptRows = async () => Number((await engine.services.databases.db.selectFrom('app.event_receipts').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    const receiptsBefore = await receiptRows();
    const settled = await runErasureGroup(deps(), [...ids, twice]);
    // The receipts of everyone's events went in shared statements: each counted for its owner.
    const counted = ids.map((id) => receiptOf(settled.get(id)).removed.event_receipts ?? 0);
    expect(counted.reduce((a, b) => a + b, 0)).toBe(receiptsBefore - (await receiptRows()));
    expect(new Set(counted)).toEqual(new Set([counted[0]]));
    expect(counted[0]).toBeGreaterThanOrEqual(6);

    people.forEach((p, i) => {
      const receipt = receiptOf(settled.get(ids[i] as string));
      expect(receipt).toMatchObject({ profilesErased: 1, dataKeysDestroyed: 1, suppressed: true, verification: { clean: true, findings: [] } });
      expect(receipt.removed).toMatchObject({ events: p.events, profiles: 1, vault_fields: 2, vault_identities: 3, consent_ledger: 2 });
    });
    const second = receiptOf(settled.get(twice));
    expect(second).toMatchObject({ profilesErased: 0, dataKeysDestroyed: 0, verification: { clean: true } });
    expect([second.removed.events ?? 0, second.removed.profiles ?? 0, second.removed.vault_identities]).toEqual([0, 0, 0]);
    for (const p of people) await expectErased(engine.services, p.person, p.trace);
    for (const id of [...ids, twice]) {
      const row = await erasureRequest(engine.services.databases.db, id);
      expect(row).toMatchObject({ state: 'completed', step: 8, identifier_hash: null, subject_sealed: null, work: {}, last_error: null });
      expect(verifyReceipt(receiptKey(engine.services.keys.linkSigning), row?.receipt, row?.receipt_signature as string)).toBe(true);
    }
  }, 120_000);

  it('runs requests already under way, or asking for a deep scan, one by one, and reports unknown ones', async () => {
    const [a, b] = await Promise.all(['solo1', 'solo2'].map(stored));
    const resumed = await requestErasure({ email: (a as Stored).person.email });
    await expect(runErasure(deps(), resumed, { afterStep: (n) => { if (n === 2) throw new Error('crash after step 2'); } })).rejects.toThrow('crash after step 2');
    const deep = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, {
      identifier: { email: (b as Stored).person.email },
      origin: 'cli',
      requestedBy: 'test',
      deep: true,
    });
    if (!deep.ok) throw new Error(deep.error);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const settled = await runErasureGroup(deps(), [resumed, deep.id, unknown]);
    expect(receiptOf(settled.get(resumed)).removed.events).toBe((a as Stored).events);
    expect(receiptOf(settled.get(deep.id)).verification.deep).toMatchObject({ clean: true });
    expect(settled.get(unknown)).toEqual({ ok: true, outcome: { outcome: 'unknown_request' } });
    await expectErased(engine.services, (a as Stored).person, (a as Stored).trace);
    await expectErased(engine.services, (b as Stored).person, (b as Stored).trace);
  }, 120_000);

  it('lets a request whose job is running right now leave the group at step 3; the others complete', async () => {
    const [held, free] = await Promise.all(['busy1', 'busy2'].map(stored));
    const { db } = engine.services.databases;
    // A double opt-in sign-up of the first person, whose confirmation email a worker is sending.
    const confirmationId = randomUUID();
    await db
      .insertInto('app.consent_confirmations')
      .values({ id: confirmationId, profile_id: (held as Stored).trace.profileIds[0] as string, purposes: ['email_marketing'], notice_id: 'n', notice_version: 1, notice_hash: Buffer.alloc(32), requested_at: new Date(), expires_at: new Date(Date.now() + 86_400_000) })
      .execute();
    const gate = deferred();
    const started = deferred();
    const worker = new Worker('email', async () => { started.resolve(); await gate.promise; }, { connection: createRedis(engine.services.redisEndpoint, 'worker', engine.services.log, 'test-email-worker'), prefix: engine.services.queues.prefix });
    try {
      await engine.services.queues.queue('email').add('confirm', { confirmationId }, { jobId: `confirm-${confirmationId}` });
      await started.promise;
      const [heldId, freeId] = await Promise.all([held, free].map((p) => requestErasure({ email: (p as Stored).person.email })));
      const settled = await runErasureGroup(deps(), [heldId as string, freeId as string]);
      expect(receiptOf(settled.get(freeId as string)).verification.clean).toBe(true);
      expect(settled.get(heldId as string)).toMatchObject({ ok: false });
      expect(await erasureRequest(db, heldId as string)).toMatchObject({ state: 'running', step: 3 });
      await expectErased(engine.services, (free as Stored).person, (free as Stored).trace);
      // The send finishes; the job's retry erases the rest alone.
      gate.resolve();
      await waitFor(async () => (await engine.services.queues.queue('email').getJob(`confirm-${confirmationId}`))?.finishedOn !== undefined, { what: 'the send finished' });
      const outcome = await runErasure(deps(), heldId as string);
      if (outcome.outcome !== 'completed') throw new Error(outcome.outcome);
      expect(outcome.receipt).toMatchObject({ profilesErased: 1, verification: { clean: true } });
      expect(outcome.receipt.removed).toMatchObject({ events: (held as Stored).events, consent_confirmations: 1 });
      await expectErased(engine.services, (held as Stored).person, (held as Stored).trace);
    } finally {
      gate.resolve();
      await worker.close();
    }
  }, 120_000);

  it.each([1, 2, 3, 4, 5, 6, 7])('a crash after step %i of a group leaves each request where erasing it alone completes it', async (step) => {
    const people = await Promise.all([`c${step}a`, `c${step}b`, `c${step}c`].map(stored));
    const ids = await Promise.all(people.map((p) => requestErasure({ email: p.person.email })));
    const settled = await runErasureGroup(deps(), ids, {
      afterStep: (n) => {
        if (n === step) throw new Error(`crash after step ${n}`);
      },
    });
    for (const id of ids) {
      expect(settled.get(id)).toMatchObject({ ok: false });
      expect(await erasureRequest(engine.services.databases.db, id)).toMatchObject({ state: 'running', step, last_error: `grouped: Error: crash after step ${step}` });
    }
    for (const [i, p] of people.entries()) {
      const outcome = await runErasure(deps(), ids[i] as string);
      if (outcome.outcome !== 'completed') throw new Error(outcome.outcome);
      expect(outcome.receipt).toMatchObject({ profilesErased: 1, dataKeysDestroyed: 1, verification: { clean: true } });
      expect(outcome.receipt.removed).toMatchObject({ events: p.events, profiles: 1, vault_identities: 3 });
      await expectErased(engine.services, p.person, p.trace);
    }
  }, 120_000);
});

describe('the erasure worker', () => {
  let withWorker: TestEngine;
  beforeAll(async () => {
    withWorker = await startTestEngine({ RULES_DIR: rulesWithoutQuietHours() }, ['events', 'erasure']);
  }, 60_000);
  afterAll(async () => withWorker.stop());

  it('groups the jobs it runs at once, and completes every request', async () => {
    const people = await Promise.all(Array.from({ length: 10 }, (_, i) => storeSmallPerson(withWorker, `w${i}`)));
    const traces = await Promise.all(people.map((p) => traceOf(withWorker.services, p)));
    const ids: string[] = [];
    for (const p of people) {
      const created = await createErasureRequest(withWorker.services.databases, withWorker.services.config, withWorker.services.keys, { identifier: { email: p.email }, origin: 'cli', requestedBy: 'test' });
      if (!created.ok) throw new Error(created.error);
      ids.push(created.id);
    }
    // The jobs go to the queue together, as the admin API's commit relays them.
    await relayOutbox(withWorker.services.databases.db, withWorker.services.queues);
    await waitFor(
      async () => {
        const rows = await withWorker.services.databases.db.selectFrom('app.erasure_requests').select('state').where('id', 'in', ids).execute();
        return rows.every((r) => r.state === 'completed');
      },
      { what: 'every request completed by the worker', timeoutMs: 60_000 },
    );
    const groups = withWorker
      .logText()
      .split('\n')
      .filter((line) => line.includes('"erasure group"'))
      .map((line) => (JSON.parse(line) as { requests: number }).requests);
    expect(groups.reduce((a, b) => a + b, 0)).toBe(10);
    expect(Math.max(...groups)).toBeGreaterThan(1);
    for (const [i, p] of people.entries()) await expectErased(withWorker.services, p, traces[i] as Trace);
  }, 240_000);
});

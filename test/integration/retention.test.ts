import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { EventPartitions } from '../../engine/events/partitions';
import { findProfileId } from '../../engine/identity/lookup';
import { erasureRequest } from '../../engine/privacy/erasure/request';
import { runErasure } from '../../engine/privacy/erasure/run-erasure';
import { applyRetention, type RetentionOutcome } from '../../engine/privacy/retention/apply';
import { planRetention } from '../../engine/privacy/retention/plan';
import { monthsBefore, retentionPolicy } from '../../engine/privacy/retention/policy';
import { RETENTION_SCHEDULER_ID, syncRetentionScheduler } from '../../engine/privacy/retention/scheduler';
import { testConfig } from '../support/config';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForReceipts } from '../support/engine';
import { rulesLinkingByDefault } from '../support/rules';
import { waitFor } from '../support/wait';
import { runProcess } from '../../workers/process';

const DAY = 86_400_000;
const partitionOf = (d: Date) => `events_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, '0')}`;

describe('retention (GDPR Art. 5(1)(e))', () => {
  let engine: TestEngine;
  const now = new Date();
  const policy = () => retentionPolicy(engine.services.config, engine.services.rules.purposes);
  const db = () => engine.services.databases.db;

  beforeAll(async () => {
    engine = await startTestEngine({ RULES_DIR: rulesLinkingByDefault() }, ['events']);
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
  });

  /** A person known by userId and email, through the tracking API. */
  async function person(tag: string): Promise<{ profileId: string; userId: string; email: string }> {
    const userId = `${tag}-${randomUUID()}`;
    const email = `${tag}.${randomUUID().slice(0, 8)}@example.org`;
    const messageId = `identify-${userId}`;
    const res = await postJson(`${engine.url}/v1/identify`, { userId, messageId, traits: { email } }, { authorization: basicAuth(engine.writeKey) });
    expect(res.status).toBe(200);
    await waitForReceipts(engine.services, [messageId]);
    const profileId = await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }]);
    if (!profileId) throw new Error(`${tag} not stored`);
    return { profileId, userId, email };
  }

  async function insertEvents(profileId: string, at: Date, count: number): Promise<void> {
    await new EventPartitions(db()).ensure([at]);
    for (let i = 0; i < count; i++) {
      await sql`insert into app.events (profile_id, source_id, message_id, type, name, occurred_at, received_at, properties, context)
        values (${profileId}, ${engine.sourceId}, ${`m-${randomUUID()}`}, 'track', 'Article Read', ${at}, ${at}, '{}', '{}')`.execute(db());
    }
  }

  async function attachedPartitions(): Promise<Map<string, number>> {
    const { rows } = await sql<{ name: string }>`
      select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'app.events'::regclass order by 1`.execute(db());
    const out = new Map<string, number>();
    for (const { name } of rows) {
      const counted = await sql<{ n: string }>`select count(*)::text as n from ${sql.table(`app.${name}`)}`.execute(db());
      out.set(name, Number(counted.rows[0]?.n));
    }
    return out;
  }

  const count = async (table: string, where = sql`true`) =>
    Number((await sql<{ n: string }>`select count(*)::text as n from ${sql.table(table)} where ${where}`.execute(db())).rows[0]?.n);

  it('plans exactly the old partitions and the inactive profile, runs it, erases through the erasure path with a receipt; a second run does nothing', async () => {
    const old = await person('old');
    const recent = await person('recent');
    const enrolled = await person('enrolled');
    await sql`update app.profiles set last_seen_at = ${monthsBefore(now, 30)} where id in (${old.profileId}, ${enrolled.profileId})`.execute(db());
    await sql`update app.profiles set last_seen_at = ${new Date(now.getTime() - DAY)} where id = ${recent.profileId}`.execute(db());
    // Inactive as long, but in a journey: kept.
    await sql`insert into app.enrolments (campaign_id, profile_id, entry, campaign_version, rule_set_version, state, journey, started_at)
      values ('welcome_series', ${enrolled.profileId}, 1, 'v', 'v', 'active', '{}', ${now})`.execute(db());

    const threeYears = monthsBefore(now, 36);
    const fourteenMonths = monthsBefore(now, 14);
    const thirteenMonths = monthsBefore(now, 13); // the boundary month: partly inside the 13 months
    await insertEvents(recent.profileId, threeYears, 3);
    await insertEvents(recent.profileId, fourteenMonths, 2);
    await insertEvents(recent.profileId, thirteenMonths, 4);
    await insertEvents(recent.profileId, now, 5);

    // Decisions: profiling 13mo, email_marketing 2y; one citing no purpose takes the longest (2y).
    const decision = (purposes: string[], at: Date) =>
      sql`insert into app.decisions (profile_id, action, allowed, reason, purposes, decided_at)
        values (${recent.profileId}, 'retention-test', true, 'test', ${purposes}::text[], ${at})`.execute(db());
    await decision(['profiling'], fourteenMonths); // goes
    await decision(['email_marketing'], fourteenMonths); // kept: 2y
    await decision(['profiling', 'email_marketing'], fourteenMonths); // kept: the longest cited is 2y
    await decision(['email_marketing'], monthsBefore(now, 25)); // goes
    await decision([], fourteenMonths); // kept: 2y
    await decision(['profiling'], monthsBefore(now, 1)); // kept

    const confirmation = (expiresAt: Date, confirmedAt: Date | null) =>
      sql`insert into app.consent_confirmations (id, profile_id, purposes, notice_id, notice_version, notice_hash, requested_at, expires_at, confirmed_at)
        values (${randomUUID()}, ${recent.profileId}, ${['email_marketing']}::text[], 'newsletter_form', 1, ${Buffer.alloc(32, 1)},
                ${new Date(expiresAt.getTime() - 7 * DAY)}, ${expiresAt}, ${confirmedAt})`.execute(db());
    await confirmation(new Date(now.getTime() - 60 * DAY), null); // goes: never confirmed, expired 60 days ago
    await confirmation(new Date(now.getTime() - 10 * DAY), null); // kept: expired 10 days ago
    await confirmation(new Date(now.getTime() + DAY), null); // kept: pending
    await confirmation(monthsBefore(now, 36), monthsBefore(now, 36)); // kept: proof of consent

    const segment = (id: string, member: boolean, changedAt: Date, recheckAt: Date | null) =>
      sql`insert into app.segment_state (profile_id, segment_id, member, changed_at, recheck_at)
        values (${recent.profileId}, ${id}, ${member}, ${changedAt}, ${recheckAt})`.execute(db());
    await segment('rt_left_long_ago', false, fourteenMonths, null); // goes
    await segment('rt_recheck_due', false, fourteenMonths, new Date(now.getTime() + DAY)); // kept: a window may bring them in
    await segment('rt_member', true, threeYears, null); // kept
    await segment('rt_left_lately', false, monthsBefore(now, 1), null); // kept

    const ledgerBefore = await count('app.consent_ledger');
    const before = await attachedPartitions();
    const allProfileIds = [old.profileId, recent.profileId, enrolled.profileId];

    // The plan: exactly the two old partitions and the one inactive profile; counts, never ids.
    const plan = await planRetention(db(), policy(), now);
    expect(plan.events.partitions.map((p) => ({ name: p.name, rows: p.rows }))).toEqual([
      { name: partitionOf(threeYears), rows: 3 },
      { name: partitionOf(fourteenMonths), rows: 2 },
    ]);
    expect(plan.events.rows).toBe(5);
    expect(plan.decisions.rows).toBe(2);
    expect(plan.decisions.byRetention).toEqual([
      { retention: '2y', purposes: ['email_marketing'], before: monthsBefore(now, 24).toISOString(), rows: 1 },
      { retention: '13mo', purposes: ['profiling', 'analytics'], before: monthsBefore(now, 13).toISOString(), rows: 1 },
    ]);
    expect(plan.confirmations.rows).toBe(1);
    expect(plan.segmentStates.rows).toBe(1);
    expect(plan.inactiveProfiles).toMatchObject({ profiles: 1, thisRun: 1 });
    expect(plan.kept.map((k) => k.data)).toContain('consent ledger');
    const planText = JSON.stringify(plan);
    for (const id of allProfileIds) expect(planText).not.toContain(id);

    // The run does what the plan said.
    const outcome = await applyRetention(engine.services, policy(), now);
    expect({ ...outcome, partitionsDropped: [...outcome.partitionsDropped].sort() }).toEqual({
      at: now.toISOString(),
      partitionsDropped: [partitionOf(threeYears), partitionOf(fourteenMonths)].sort(),
      eventRowsDropped: 5,
      partitionsBusy: [],
      decisionsDeleted: 2,
      confirmationsDeleted: 1,
      segmentStatesDeleted: 1,
      erasuresRequested: 1,
      erasuresAlreadyOpen: 0,
      profilesNotErasable: 0,
      stopped: false,
    });
    const after = await attachedPartitions();
    const expected = new Map(before);
    expected.delete(partitionOf(threeYears));
    expected.delete(partitionOf(fourteenMonths));
    expect(after).toEqual(expected);
    expect(after.get(partitionOf(thirteenMonths))).toBe(4);
    expect(after.get(partitionOf(now))).toBe(before.get(partitionOf(now)));
    expect(await count('pg_class', sql`relname in (${partitionOf(threeYears)}, ${partitionOf(fourteenMonths)})`)).toBe(0);
    expect(await count('app.decisions', sql`action = 'retention-test'`)).toBe(4);
    expect(await count('app.consent_confirmations')).toBe(3);
    expect((await db().selectFrom('app.segment_state').select('segment_id').where('segment_id', 'like', 'rt_%').orderBy('segment_id').execute()).map((r) => r.segment_id)).toEqual([
      'rt_left_lately',
      'rt_member',
      'rt_recheck_due',
    ]);
    expect(await count('app.consent_ledger')).toBe(ledgerBefore);

    // The inactive profile: one erasure request, by the retention policy, already on the erasure queue.
    const requests = await db().selectFrom('app.erasure_requests').selectAll().execute();
    expect(requests.map((r) => ({ origin: r.origin, requestedBy: r.requested_by, state: r.state }))).toEqual([
      { origin: 'retention', requestedBy: 'retention policy', state: 'pending' },
    ]);
    const request = requests[0] as (typeof requests)[number];
    expect(await engine.services.queues.queue('erasure').getJob(`erase-${request.id}`)).toBeDefined();

    // The log line: counts, no person.
    const line = engine
      .logText()
      .split('\n')
      .find((l) => l.includes('"retention run"'));
    expect(line).toBeDefined();
    expect(JSON.parse(line as string).retention).toMatchObject({ erasuresRequested: 1, decisionsDeleted: 2 });
    for (const id of allProfileIds) expect(line).not.toContain(id);

    // The erasure worker's job, run here: the profile goes, with a completed, signed receipt.
    const erased = await runErasure({ ...engine.services }, request.id);
    if (erased.outcome !== 'completed') throw new Error(erased.outcome);
    expect(erased.receipt).toMatchObject({ profilesErased: 1, verification: { clean: true } });
    const done = await erasureRequest(db(), request.id);
    expect(done).toMatchObject({ state: 'completed', origin: 'retention' });
    expect(done?.receipt).not.toBeNull();
    expect(done?.receipt_signature).toEqual(expect.any(String));
    expect(await count('app.profiles', sql`id = ${old.profileId}`)).toBe(0);
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: old.userId }])).toBeUndefined();
    expect(await count('app.profiles', sql`id in (${recent.profileId}, ${enrolled.profileId})`)).toBe(2);
    // With the person went their own event of this month (the identify), and nothing else.
    const afterErasure = await attachedPartitions();
    expect(afterErasure).toEqual(new Map([...after].map(([name, n]) => [name, name === partitionOf(now) ? n - 1 : n])));

    // A second run: nothing left to do.
    const again = await applyRetention(engine.services, policy(), now);
    expect(again).toMatchObject({
      partitionsDropped: [],
      eventRowsDropped: 0,
      decisionsDeleted: 0,
      confirmationsDeleted: 0,
      segmentStatesDeleted: 0,
      erasuresRequested: 0,
      erasuresAlreadyOpen: 0,
    } satisfies Partial<RetentionOutcome>);
    expect(await attachedPartitions()).toEqual(afterErasure);
    expect(await count('app.erasure_requests')).toBe(1);
    const planAfter = await planRetention(db(), policy(), now);
    expect([planAfter.events.partitions.length, planAfter.decisions.rows, planAfter.confirmations.rows, planAfter.segmentStates.rows, planAfter.inactiveProfiles.profiles]).toEqual([0, 0, 0, 0, 0]);
  }, 90_000);

  it('two runs at once act once: each partition dropped once, one erasure request per person', async () => {
    const a = await person('idle-a');
    const b = await person('idle-b');
    await sql`update app.profiles set last_seen_at = ${monthsBefore(now, 40)} where id in (${a.profileId}, ${b.profileId})`.execute(db());
    const fiveYears = monthsBefore(now, 60);
    const fourYears = monthsBefore(now, 48);
    await insertEvents(a.profileId, fiveYears, 2);
    await insertEvents(a.profileId, fourYears, 2);
    const openBefore = await count('app.erasure_requests');

    const [first, second] = await Promise.all([applyRetention(engine.services, policy(), now), applyRetention(engine.services, policy(), now)]);
    const dropped = [...first.partitionsDropped, ...second.partitionsDropped].sort();
    expect(dropped).toEqual([partitionOf(fiveYears), partitionOf(fourYears)].sort());
    expect(first.erasuresRequested + second.erasuresRequested).toBe(2);
    expect(first.erasuresRequested + first.erasuresAlreadyOpen).toBe(2);
    expect(second.erasuresRequested + second.erasuresAlreadyOpen).toBe(2);
    const requests = await db().selectFrom('app.erasure_requests').select(['origin', 'state']).where('state', '=', 'pending').execute();
    expect(requests).toEqual([
      { origin: 'retention', state: 'pending' },
      { origin: 'retention', state: 'pending' },
    ]);
    expect(await count('app.erasure_requests')).toBe(openBefore + 2);
  }, 60_000);

  it('puts a bounded batch up for erasure each run (RETENTION_BATCH_SIZE), oldest first', async () => {
    // The two idle people of the test before are still pending: they count as already open, not again.
    const people = await Promise.all(['batch-1', 'batch-2', 'batch-3'].map((t) => person(t)));
    for (const [i, p] of people.entries()) {
      await sql`update app.profiles set last_seen_at = ${monthsBefore(now, 30 + i)} where id = ${p.profileId}`.execute(db());
    }
    const small = { ...policy(), batchSize: 2 };
    const first = await applyRetention(engine.services, small, now, { pageSize: 1 });
    expect(first).toMatchObject({ erasuresRequested: 2, erasuresAlreadyOpen: 2 });
    const second = await applyRetention(engine.services, small, now, { pageSize: 1 });
    expect(second).toMatchObject({ erasuresRequested: 1, erasuresAlreadyOpen: 4 });
    expect((await planRetention(db(), small, now)).inactiveProfiles).toMatchObject({ profiles: 5, thisRun: 2 });
  }, 60_000);

  it('keeps a daily job scheduler in the maintenance queue, whose job runs retention; RETENTION_CRON=off removes it', async () => {
    const { queues } = engine.services;
    await runProcess(engine.services, { api: false, queues: ['maintenance'] });
    await waitFor(async () => (await queues.schedulerIds('maintenance')).includes(RETENTION_SCHEDULER_ID), { what: 'the retention scheduler' });
    const scheduler = await queues.queue('maintenance').getJobScheduler(RETENTION_SCHEDULER_ID);
    expect(scheduler).toMatchObject({ name: 'retention', pattern: '30 3 * * *', tz: 'UTC' });

    const runs = () => engine.logText().split('\n').filter((l) => l.includes('"retention run"')).length;
    const before = runs();
    await queues.enqueue('maintenance', 'retention', {});
    await waitFor(() => runs() > before, { what: 'a retention run by the maintenance worker' });

    await syncRetentionScheduler(queues, testConfig({ RETENTION_CRON: 'off' }), engine.services.log);
    expect(await queues.schedulerIds('maintenance')).not.toContain(RETENTION_SCHEDULER_ID);
  }, 60_000);
});

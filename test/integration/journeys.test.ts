import fs from 'node:fs';
import path from 'node:path';
import { runDueAutomation } from '../../engine/automation/run-automation';
import { appendLedger } from '../../engine/consent/ledger';
import { findProfileId, type SubjectIdentifier } from '../../engine/identity/lookup';
import { processEventBatch } from '../../engine/events/process-batch';
import { batchDeps } from '../../engine/runtime/batch';
import { reloadRules } from '../../engine/runtime/reload-rules';
import { relayOutbox } from '../../engine/outbox/outbox';
import { journeysHandlers } from '../../workers/journeys';
import { Queue } from 'bullmq';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { tempDir } from '../support/config';
import { startTestEngine, type TestEngine } from '../support/engine';
import { SHIPPED_RULES_DIR } from '../support/rules';
import { waitFor } from '../support/wait';

const QUICK_CART = `id: quick_cart
name: Quick cart
purposes: [email_marketing, profiling]
trigger:
  event: {name: Basket Filled}
exit:
  event: {name: Order Completed}
steps:
  - wait: 1s
  - id: reminder
    send: {template: cart_reminder}
  - add_to_segment: cart_abandoners_contacted
  - wait_until: {event: {name: Checkout Started}, timeout: 1h, on_timeout: exit}
  - id: last_call
    send: {template: cart_last_call}
`;

const hh = (hour: number) => `${String((hour + 24) % 24).padStart(2, '0')}:00`;
/** Quiet hours around the hour the test runs in (UTC): its send is deferred, and the journey waits for it. */
const quietNudge = (hour: number) => `id: quiet_nudge
name: Quiet nudge
purposes: [email_marketing, profiling]
trigger:
  event: {name: Nudge Me}
steps:
  - id: nudge
    send: {template: cart_reminder}
  - add_to_segment: cart_abandoners_contacted
limits:
  quiet_hours: {from: "${hh(hour - 1)}", to: "${hh(hour + 2)}", timezone: UTC}
`;

/** Journeys in the running engine: woken by time, released by an event, carried through a merge, ended by a reload. */
describe('journeys over time, events, merges and reloads', () => {
  let engine: TestEngine;
  let rulesDir: string;
  beforeAll(async () => {
    rulesDir = tempDir('cf-rules');
    fs.cpSync(SHIPPED_RULES_DIR, rulesDir, { recursive: true });
    fs.writeFileSync(path.join(rulesDir, 'campaigns', 'quick_cart.yaml'), QUICK_CART);
    fs.writeFileSync(path.join(rulesDir, 'campaigns', 'quiet_nudge.yaml'), quietNudge(new Date().getUTCHours()));
    engine = await startTestEngine({ RULES_DIR: rulesDir });
  });
  afterAll(async () => {
    await engine.stop();
  });

  const db = () => engine.services.databases.db;
  const deps = () => batchDeps(engine.services);
  const automation = () => ({ compiled: engine.services.rules.compiled, catalog: engine.services.rules.purposes });
  const event = (messageId: string, body: Record<string, unknown>): AcceptedEvent => {
    const now = new Date().toISOString();
    return { sourceId: engine.sourceId, messageId, receivedAt: now, occurredAt: now, signals: { gpc: false, dnt: false }, event: { type: 'track', ...body } as SegmentEvent };
  };
  /** A person who allows everything the cart campaign needs (set up directly: consent has its own tests). */
  const consentingPerson = async (identity: Record<string, string>, messageId: string): Promise<string> => {
    await processEventBatch(deps(), [event(messageId, { event: 'Hello', ...identity })]);
    const id: SubjectIdentifier = identity.userId ? { userId: identity.userId } : { anonymousId: identity.anonymousId as string };
    const receipt = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [id])) as string;
    await appendLedger(
      db(),
      ['email_marketing', 'profiling', 'analytics'].map((purpose) => ({
        profileId: receipt,
        purpose,
        decision: 'granted' as const,
        occurredAt: new Date(),
        sourceKind: 'admin' as const,
        method: 'admin' as const,
      })),
    );
    return receipt;
  };
  const enrolmentOf = (profileId: string) =>
    db().selectFrom('app.enrolments').selectAll().where('profile_id', '=', profileId).where('campaign_id', '=', 'quick_cart').execute();
  const sendsOf = async (enrolmentId: string) =>
    (await db().selectFrom('app.scheduled_sends').select(['step_id', 'template', 'state']).where('enrolment_id', '=', enrolmentId).orderBy('created_at').execute()).map(
      (s) => `${s.step_id}:${s.template}:${s.state}`,
    );
  const tick = () => db().transaction().execute((trx) => runDueAutomation(trx, automation(), new Date()));

  it('a wait ends on the tick (a send scheduled, a manual segment joined); a wait_until ends on the event it waits for', async () => {
    const profileId = await consentingPerson({ userId: 'journey-1' }, 'j1-hello');
    await processEventBatch(deps(), [event('j1-basket', { event: 'Basket Filled', userId: 'journey-1' })]);
    const [enrolment] = await enrolmentOf(profileId);
    expect(enrolment?.state).toBe('active');
    expect(await sendsOf(enrolment?.id as string)).toEqual([]);
    // The wait is one second: the tick (given the real clock) wakes the journey once it is over.
    await waitFor(async () => (await tick()).journeysWoken > 0, { what: 'the journey woken by the tick' });
    expect((await sendsOf(enrolment?.id as string))[0]).toMatch(/^reminder:cart_reminder:scheduled$/);
    const contacted = await db().selectFrom('app.segment_state').select('member').where('profile_id', '=', profileId).where('segment_id', '=', 'cart_abandoners_contacted').executeTakeFirst();
    expect(contacted?.member).toBe(true);

    await processEventBatch(deps(), [event('j1-checkout', { event: 'Checkout Started', userId: 'journey-1' })]);
    expect(await sendsOf(enrolment?.id as string)).toEqual(['reminder:cart_reminder:scheduled', 'last_call:cart_last_call:scheduled']);
    const done = await db().selectFrom('app.enrolments').select(['state', 'wake_at']).where('id', '=', enrolment?.id as string).executeTakeFirstOrThrow();
    expect(done).toEqual({ state: 'completed', wake_at: null });
  });

  it('a wait is written to the outbox in the same transaction, relayed as a delayed job with a deterministic id, and the job wakes the journey', async () => {
    const profileId = await consentingPerson({ userId: 'journey-4' }, 'j4-hello');
    await processEventBatch(deps(), [event('j4-basket', { event: 'Basket Filled', userId: 'journey-4' })]);
    const [enrolment] = await enrolmentOf(profileId);
    const row = await db().selectFrom('app.outbox').selectAll().where('job_id', 'like', `wake-${enrolment?.id}-%`).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ queue: 'journeys', job_name: 'wake', relayed_at: null, payload: { enrolmentId: enrolment?.id } });
    expect(row.run_at.getTime()).toBe(enrolment?.wake_at?.getTime());

    expect(await relayOutbox(db(), engine.services.queues)).toBeGreaterThanOrEqual(1);
    const relayed = await db().selectFrom('app.outbox').select('relayed_at').where('id', '=', row.id).executeTakeFirstOrThrow();
    expect(relayed.relayed_at).not.toBeNull();
    const queue = new Queue('journeys', { connection: engine.services.redis, prefix: engine.services.config.queuePrefix });
    const job = await queue.getJob(row.job_id);
    expect(job?.data).toEqual(row.payload);
    // Relaying the same row again (a crash before it was marked) adds no second job.
    await engine.services.queues.enqueue('journeys', 'wake', row.payload as never, { jobId: row.job_id, delayMs: 1_000 });
    expect((await queue.getJobs(['delayed', 'wait'])).filter((j) => j.id === row.job_id)).toHaveLength(1);

    // The worker's handler for that job, once the wait is over.
    const wake = journeysHandlers(engine.services).wake;
    const context = { job: job as never, log: engine.services.log, signal: new AbortController().signal };
    await waitFor(async () => {
      await wake(row.payload as never, context);
      return (await sendsOf(enrolment?.id as string)).length > 0;
    }, { what: 'the journey woken by its job' });
    expect(await sendsOf(enrolment?.id as string)).toEqual(['reminder:cart_reminder:scheduled']);
    await queue.close();
  });

  it('a journey waiting for its own send (deferred by quiet hours) keeps no wake-up job: the send is the one job, and the tick moves the journey on after it', async () => {
    const profileId = await consentingPerson({ userId: 'journey-6' }, 'j6-hello');
    await processEventBatch(deps(), [event('j6-nudge', { event: 'Nudge Me', userId: 'journey-6' })]);
    const [enrolment] = await db().selectFrom('app.enrolments').selectAll().where('profile_id', '=', profileId).where('campaign_id', '=', 'quiet_nudge').execute();
    const [send] = await db().selectFrom('app.scheduled_sends').selectAll().where('enrolment_id', '=', enrolment?.id as string).execute();
    // Deferred to the end of the quiet hours; the journey waits for it (an exit meanwhile would cancel it).
    expect(send).toMatchObject({ step_id: 'nudge', state: 'scheduled' });
    expect(send?.deferred_from).not.toBeNull();
    expect(send?.due_at.getTime()).toBeGreaterThan(Date.now());
    expect(enrolment).toMatchObject({ state: 'active', wake_at: send?.due_at });
    const outbox = await db().selectFrom('app.outbox').select(['queue', 'job_id', 'run_at']).where('job_id', 'in', [`send-${send?.id}`, `wake-${enrolment?.id}-${send?.due_at.getTime()}`]).execute();
    expect(outbox).toEqual([{ queue: 'email', job_id: `send-${send?.id}`, run_at: send?.due_at }]);

    // Once the send is due, the rules tick (which claims every journey whose wake_at has passed) goes on to the next step.
    const later = new Date((send?.due_at.getTime() ?? 0) + 1_000);
    await db().transaction().execute((trx) => runDueAutomation(trx, automation(), later));
    const after = await db().selectFrom('app.enrolments').select(['state', 'wake_at']).where('id', '=', enrolment?.id as string).executeTakeFirstOrThrow();
    expect(after).toEqual({ state: 'completed', wake_at: null });
    const contacted = await db().selectFrom('app.segment_state').select('member').where('profile_id', '=', profileId).where('segment_id', '=', 'cart_abandoners_contacted').executeTakeFirst();
    expect(contacted?.member).toBe(true);
  });

  it('an anonymous visitor who identifies brings their journey and its sends to the known profile', async () => {
    const known = await consentingPerson({ userId: 'journey-2' }, 'j2-hello');
    const anonymous = await consentingPerson({ anonymousId: 'journey-2-device' }, 'j2-anon-hello');
    await processEventBatch(deps(), [event('j2-basket', { event: 'Basket Filled', anonymousId: 'journey-2-device' })]);
    const [before] = await enrolmentOf(anonymous);
    expect(before?.state).toBe('active');

    await processEventBatch(deps(), [{ ...event('j2-identify', {}), event: { type: 'identify', userId: 'journey-2', anonymousId: 'journey-2-device' } as SegmentEvent }]);
    expect(await enrolmentOf(anonymous)).toEqual([]);
    const moved = await enrolmentOf(known);
    expect(moved.map((e) => [e.id, e.entry, e.state])).toEqual([[before?.id, 1, 'active']]);
    // Its exit event now arrives under the known profile, and still ends it.
    await processEventBatch(deps(), [event('j2-order', { event: 'Order Completed', userId: 'journey-2' })]);
    expect((await enrolmentOf(known)).map((e) => e.state)).toEqual(['exited']);
  });

  it('a reload that changes a segment re-evaluates its members at the next tick', async () => {
    const profileId = await consentingPerson({ userId: 'journey-5' }, 'j5-hello');
    await processEventBatch(deps(), [{ ...event('j5-identify', {}), event: { type: 'identify', userId: 'journey-5', traits: { plan: 'pro' } } as SegmentEvent }]);
    const vip = () => db().selectFrom('app.segment_state').select(['member', 'recheck_at']).where('profile_id', '=', profileId).where('segment_id', '=', 'vip').executeTakeFirst();
    expect(await vip()).toMatchObject({ member: true, recheck_at: null });
    const file = path.join(rulesDir, 'segments', 'vip.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/in: \[pro, team\]/, 'in: [team]'));
    expect(await reloadRules(engine.services)).toMatchObject({ ok: true, changed: true });
    expect((await vip())?.recheck_at).not.toBeNull();
    await tick();
    expect(await vip()).toMatchObject({ member: false, recheck_at: null });
  });

  it('a reload that removes a campaign ends its waiting journeys at the next tick instead of leaving them due forever', async () => {
    const profileId = await consentingPerson({ userId: 'journey-3' }, 'j3-hello');
    await processEventBatch(deps(), [event('j3-basket', { event: 'Basket Filled', userId: 'journey-3' })]);
    fs.rmSync(path.join(rulesDir, 'campaigns', 'quick_cart.yaml'));
    expect(await reloadRules(engine.services)).toMatchObject({ ok: true, changed: true });
    await waitFor(async () => {
      await tick();
      return (await enrolmentOf(profileId))[0]?.state === 'exited';
    }, { what: 'the orphaned journey ended' });
    expect((await enrolmentOf(profileId))[0]?.finish_reason).toBe('the campaign is no longer in the rule set');
  });
});

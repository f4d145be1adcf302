import { sql } from 'kysely';
import { runDueAutomation } from '../../engine/automation/run-automation';
import { appendLedger } from '../../engine/consent/ledger';
import { processEventBatch } from '../../engine/events/process-batch';
import { batchDeps } from '../../engine/runtime/batch';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForReceipts } from '../support/engine';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';
import { rulesWithQuietHoursNow } from '../support/sends';

const DAY = 24 * 60 * 60 * 1000;

/** The shipped example rules at work on real PostgreSQL and Redis: segments, triggers, journeys, exits. */
describe('rules engine: segments, enrolments and journeys on real data', () => {
  let engine: TestEngine;
  const quiet = rulesWithQuietHoursNow();
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: quiet.dir }, ['events', 'email']);
  });
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });

  const db = () => engine.services.databases.db;
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });
  const profileOfUser = async (userId: string) =>
    (await db().selectFrom('app.consent_ledger').select('profile_id').where('event_message_id', '=', `consent-${userId}`).executeTakeFirstOrThrow()).profile_id;
  const grantAnalyticsAndProfiling = async (userId: string) => {
    const res = await postJson(
      `${engine.url}/v1/consent`,
      { userId, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner', messageId: `consent-${userId}` },
      auth(),
    );
    expect(res.status).toBe(200);
    return profileOfUser(userId);
  };
  const segmentState = async (profileId: string, segmentId: string) =>
    db().selectFrom('app.segment_state').selectAll().where('profile_id', '=', profileId).where('segment_id', '=', segmentId).executeTakeFirst();

  it('enters a behavioural segment on the 3rd event and leaves it when the 14-day window passes', async () => {
    const profileId = await grantAnalyticsAndProfiling('reader-1');
    const read = (n: number) => postJson(`${engine.url}/v1/track`, { userId: 'reader-1', event: 'Article Read', messageId: `read-${n}` }, auth());
    await read(1);
    await read(2);
    await waitForReceipts(engine.services, ['read-1', 'read-2']);
    expect(await segmentState(profileId, 'engaged_readers')).toMatchObject({ member: false });
    // Which row version each segment row is (xmin): a re-evaluation that changes nothing writes nothing.
    const versions = async () =>
      (await sql<{ segment_id: string; version: string }>`select segment_id, xmin::text as version from app.segment_state where profile_id = ${profileId} order by segment_id`.execute(db())).rows;
    const before = await versions();
    expect(before.length).toBeGreaterThan(1);
    await read(3);
    await waitForReceipts(engine.services, ['read-3']);
    const after = await versions();
    expect(after.filter((r) => r.segment_id !== 'engaged_readers')).toEqual(before.filter((r) => r.segment_id !== 'engaged_readers'));
    expect(after.find((r) => r.segment_id === 'engaged_readers')?.version).not.toBe(before.find((r) => r.segment_id === 'engaged_readers')?.version);
    const entered = await segmentState(profileId, 'engaged_readers');
    expect(entered).toMatchObject({ member: true });
    // Re-checked when the oldest of the three leaves the window: about 14 days from now.
    expect(Math.abs((entered?.recheck_at?.getTime() ?? 0) - (Date.now() + 14 * DAY))).toBeLessThan(60_000);

    // Time passes (the recompute is given a clock 15 days on): the window slid past the events.
    const later = new Date(Date.now() + 15 * DAY);
    const done = await db().transaction().execute((trx) => runDueAutomation(trx, { compiled: engine.services.rules.compiled, catalog: engine.services.rules.purposes }, later));
    expect(done.profiles).toBeGreaterThanOrEqual(1);
    expect(await segmentState(profileId, 'engaged_readers')).toMatchObject({ member: false });
  });

  it('enrols a person once when the same triggering event is processed by two workers at once, and once for two triggers racing', async () => {
    const profileId = await grantAnalyticsAndProfiling('shopper-1');
    // The abandoned cart also needs email_marketing; here set up directly (double opt-in is tested elsewhere).
    await appendLedger(db(), [
      { profileId, purpose: 'email_marketing', decision: 'granted', occurredAt: new Date(), sourceKind: 'admin', method: 'admin' },
    ]);
    const deps = batchDeps(engine.services);
    const now = new Date().toISOString();
    const added = (messageId: string): AcceptedEvent => ({
      sourceId: engine.sourceId,
      messageId,
      receivedAt: now,
      occurredAt: now,
      signals: { gpc: false, dnt: false },
      event: { type: 'track', event: 'Product Added', userId: 'shopper-1', properties: { product_id: 'p1', price: 49, currency: 'PLN' } } as SegmentEvent,
    });
    const same = await Promise.all([processEventBatch(deps, [added('cart-1')]), processEventBatch(deps, [added('cart-1')])]);
    expect(same.map((o) => o.stored).sort()).toEqual([0, 1]);
    const racing = await Promise.all([processEventBatch(deps, [added('cart-2')]), processEventBatch(deps, [added('cart-3')])]);
    expect(racing.map((o) => o.stored)).toEqual([1, 1]);

    const enrolments = await db().selectFrom('app.enrolments').selectAll().where('profile_id', '=', profileId).where('campaign_id', '=', 'abandoned_cart').execute();
    expect(enrolments.map((e) => [e.entry, e.state])).toEqual([[1, 'active']]);
    const decisions = await db()
      .selectFrom('app.decisions')
      .select(['outcome', 'reason', 'rule_id', 'rule_version'])
      .where('profile_id', '=', profileId)
      .where('rule_id', '=', 'abandoned_cart')
      .orderBy('id')
      .execute();
    expect(decisions[0]).toMatchObject({ outcome: 'enrol', rule_version: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(decisions.filter((d) => d.outcome === 'enrol')).toHaveLength(1);
    // Three triggering events were stored (cart-1 once): one enrolled, the two others skipped with the reason.
    expect(decisions.filter((d) => d.outcome === 'skip').map((d) => d.reason)).toEqual([
      expect.stringMatching(/^already enrolled/),
      expect.stringMatching(/^already enrolled/),
    ]);
    // The journey waits an hour before its first reminder: the wake-up is in PostgreSQL.
    expect(enrolments[0]?.wake_at?.getTime()).toBeGreaterThan(Date.now() + 59 * 60_000);

    // An exit event ends the journey and cancels what it scheduled.
    await processEventBatch(deps, [{ ...added('order-1'), event: { type: 'track', event: 'Order Completed', userId: 'shopper-1', properties: { order_id: 'o1' } } as SegmentEvent }]);
    const exited = await db().selectFrom('app.enrolments').select(['state', 'finish_reason']).where('id', '=', enrolments[0]?.id as string).executeTakeFirst();
    expect(exited).toEqual({ state: 'exited', finish_reason: 'exit event Order Completed' });
  });

  it('a confirmed subscriber enters the newsletter segment and the welcome series; withdrawing cancels what it scheduled', async () => {
    const email = 'welcome.me@example.com';
    const mail = await subscribeWithDoubleOptIn(engine, smtp, { userId: 'newbie', email, messageId: 'consent-newbie' });

    const profileId = await profileOfUser('newbie');
    expect(await segmentState(profileId, 'newsletter_subscribers')).toMatchObject({ member: true });
    const enrolment = await db().selectFrom('app.enrolments').selectAll().where('profile_id', '=', profileId).where('campaign_id', '=', 'welcome_series').executeTakeFirstOrThrow();
    expect(enrolment.state).toBe('active');
    const sends = await db().selectFrom('app.scheduled_sends').selectAll().where('enrolment_id', '=', enrolment.id).execute();
    expect(sends.map((s) => [s.template, s.state])).toEqual([['welcome', 'scheduled']]);
    // Quiet hours cover the time of the test (the email worker running beside it would otherwise
    // send the welcome at once): deferred to their end.
    expect(sends[0]?.deferred_from).not.toBeNull();
    expect((sends[0]?.due_at as Date).toISOString().slice(11, 16)).toBe(quiet.until);

    // The person unticks email on their preference page: the journey ends, the send is cancelled.
    const prefs = /\/p\/([A-Za-z0-9_.-]+)/.exec(mail.text)?.[1] as string;
    const form = new URLSearchParams([['shown', 'email_marketing']]);
    expect((await fetch(`${engine.url}/p/${prefs}`, { method: 'POST', body: form })).status).toBe(200);
    const after = await db().selectFrom('app.enrolments').select(['state', 'finish_reason']).where('id', '=', enrolment.id).executeTakeFirstOrThrow();
    expect(after.state).toBe('exited');
    expect(after.finish_reason).toMatch(/email_marketing withdrawn by preference_page/);
    const cancelled = await db().selectFrom('app.scheduled_sends').select(['state', 'state_reason']).where('enrolment_id', '=', enrolment.id).execute();
    expect(cancelled).toEqual([{ state: 'cancelled', state_reason: expect.stringMatching(/email_marketing withdrawn/) }]);
    expect(await segmentState(profileId, 'newsletter_subscribers')).toMatchObject({ member: false });
  });
});

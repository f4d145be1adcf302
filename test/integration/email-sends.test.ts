import { runDueAutomation } from '../../engine/automation/run-automation';
import { appendLedger } from '../../engine/consent/ledger';
import { createMailer } from '../../engine/email/mailer';
import { performSend, type SendDeps } from '../../engine/email/send-step';
import { findProfileId } from '../../engine/identity/lookup';
import { tempDir } from '../support/config';
import { basicAuth, postJson, startTestEngine, type TestEngine } from '../support/engine';
import { type ReceivedMessage, startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';
import { rulesWithoutQuietHours, sendDepsOf, subscriberWithWelcome as welcomeFor } from '../support/sends';

const DAY = 24 * 60 * 60 * 1000;

const to = (messages: readonly ReceivedMessage[], address: string) => messages.filter((m) => m.to.includes(address));

describe('campaign email, end to end: double opt-in, welcome now, the next step after two days, one-click unsubscribe', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rulesWithoutQuietHours() }, ['events', 'email', 'journeys']);
  });
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });
  const db = () => engine.services.databases.db;
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });

  it('sends the welcome at once and the second email two days later, personalised, with both unsubscribe headers; one click unsubscribes', async () => {
    const email = 'ola.reader@example.com';
    expect((await postJson(`${engine.url}/v1/identify`, { userId: 'ola', traits: { email, firstName: 'Ola', plan: 'pro' }, messageId: 'ola-id' }, auth())).status).toBe(200);
    await waitFor(async () => (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'ola' }])) !== undefined, { what: 'the identify stored' });
    await subscribeWithDoubleOptIn(engine, smtp, { userId: 'ola', email });

    // The welcome goes out at once, through the outbox, the delayed job and the email worker.
    const welcome = await waitFor(async () => to(smtp.messages, email).find((m) => m.subject === 'Welcome, Ola!'), { what: `the welcome: ${smtp.messages.map((m) => m.subject).join(' | ')}` });
    expect(welcome.text).toContain('Welcome, Ola!');
    const unsubscribe = welcome.header('list-unsubscribe') as string;
    expect(unsubscribe).toMatch(/^<http:\/\/[^>]+\/u\/[A-Za-z0-9_.-]+>$/);
    expect(welcome.header('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');
    const profileId = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'ola' }])) as string;
    // The row is marked sent once the relay's reply reaches the worker, a moment after the message arrived.
    const sent = await waitFor(
      async () => {
        const [row] = await db().selectFrom('app.scheduled_sends').selectAll().where('profile_id', '=', profileId).where('template', '=', 'welcome').execute();
        return row?.state === 'sent' ? row : undefined;
      },
      { what: 'the welcome send marked sent' },
    );
    expect(welcome.header('message-id')).toBe(`<send-${sent.id}@consentflow>`);
    expect(sent).toMatchObject({ state: 'sent', attempts: 1 });
    // Counted by the email worker for the ops dashboard (ops/grafana-dashboard.json).
    await waitFor(async () => /^consentflow_email_sends_total\{outcome="sent"\} 1$/m.test(await (await fetch(`${engine.url}/metrics`)).text()), { what: 'the send counted in /metrics' });

    // Two days later (shifted time, no waiting): the journey wakes and its second email is due.
    const later = new Date(Date.now() + 2 * DAY + 60_000);
    const automation = { compiled: engine.services.rules.compiled, catalog: engine.services.rules.purposes };
    await db().transaction().execute((trx) => runDueAutomation(trx, automation, later));
    const second = await db().selectFrom('app.scheduled_sends').selectAll().where('profile_id', '=', profileId).where('template', '!=', 'welcome').executeTakeFirstOrThrow();
    expect(second.template).toBe('getting_started');
    const mailer = createMailer({ smtpUrl: smtp.url, from: engine.services.config.email.from, outboxDir: tempDir('cf-outbox'), log: engine.services.log });
    const deps = sendDepsOf(engine, mailer);
    expect(await performSend(deps, second.id, later)).toEqual({ state: 'sent', messageId: `send-${second.id}` });
    await mailer.close();
    const campaignMail = to(smtp.messages, email).filter((m) => m.subject !== 'Please confirm your subscription');
    expect(campaignMail.map((m) => m.subject)).toEqual(['Welcome, Ola!', 'Getting started, Ola']);
    for (const m of campaignMail) expect(m.header('list-unsubscribe-post')).toBe('List-Unsubscribe=One-Click');

    // One-click unsubscribe (RFC 8058): a GET alone changes nothing; a tampered token is a 400 with no redirect.
    const url = unsubscribe.slice(1, -1).replace(/^http:\/\/[^/]+/, engine.url);
    const ledger = () => db().selectFrom('app.consent_ledger').select(['decision', 'method']).where('profile_id', '=', profileId).where('purpose', '=', 'email_marketing').orderBy('id').execute();
    expect((await fetch(url)).status).toBe(200);
    expect((await ledger()).map((r) => r.decision)).toEqual(['granted']);
    const tampered = await fetch(`${url.slice(0, -2)}xx`, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' }, redirect: 'manual' });
    expect(tampered.status).toBe(400);
    expect(tampered.headers.get('location')).toBeNull();
    const click = await fetch(url, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(click.status).toBe(200);
    expect(await ledger()).toEqual([
      { decision: 'granted', method: 'double_opt_in' },
      { decision: 'withdrawn', method: 'email_link' },
    ]);
    const enrolment = await db().selectFrom('app.enrolments').select(['state']).where('profile_id', '=', profileId).where('campaign_id', '=', 'welcome_series').executeTakeFirstOrThrow();
    expect(enrolment.state).not.toBe('active');
  });
});

describe('sending: relay failures, hard bounces, withdrawal after scheduling', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  let deps: SendDeps;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    // No email worker here: the test drives each send itself, at the time it chooses.
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rulesWithoutQuietHours() }, ['events']);
    deps = sendDepsOf(engine, createMailer({ smtpUrl: smtp.url, from: engine.services.config.email.from, outboxDir: tempDir('cf-outbox'), log: engine.services.log }));
  });
  afterAll(async () => {
    await deps.mailer.close();
    await engine.stop();
    await smtp.close();
  });
  const db = () => engine.services.databases.db;

  const subscriberWithWelcome = (userId: string, email: string) => welcomeFor(engine, userId, email);

  it('while the relay answers 421 the send is retried, and goes out once after recovery', async () => {
    const { sendId } = await subscriberWithWelcome('retry-me', 'retry.me@example.com');
    smtp.setRejection({ code: 421, message: '4.3.2 Service not available, try again later' });
    await expect(performSend(deps, sendId)).rejects.toMatchObject({ name: 'DeliveryError', permanent: false });
    await expect(performSend(deps, sendId)).rejects.toMatchObject({ permanent: false });
    expect(await db().selectFrom('app.scheduled_sends').select(['state', 'attempts']).where('id', '=', sendId).executeTakeFirst()).toEqual({ state: 'scheduled', attempts: 2 });
    smtp.setRejection(undefined);
    expect(await performSend(deps, sendId)).toMatchObject({ state: 'sent' });
    expect(await performSend(deps, sendId)).toEqual({ state: 'not_scheduled' });
    expect(to(smtp.messages, 'retry.me@example.com')).toHaveLength(1);
  });

  it('550 5.1.1: no retry, the address suppressed by blind index, and the next send to it skipped', async () => {
    const { profileId, sendId } = await subscriberWithWelcome('bounce-me', 'bounce.me@example.com');
    smtp.setRejection({ code: 550, message: '5.1.1 <bounce.me@example.com>: Recipient address rejected: no such user' });
    const outcome = await performSend(deps, sendId);
    smtp.setRejection(undefined);
    expect(outcome).toMatchObject({ state: 'failed', reason: expect.stringMatching(/^refused by the relay: .*550 5\.1\.1/) });
    expect(outcome).not.toMatchObject({ reason: expect.stringContaining('bounce.me@example.com') });
    const suppressed = await db().selectFrom('app.suppressions').selectAll().execute();
    expect(suppressed.map((s) => [s.reason, s.hash.length])).toContainEqual(['hard_bounce', 32]);
    // Another send to the same person: skipped before anything goes out.
    const [another] = await db()
      .insertInto('app.scheduled_sends')
      .values({ enrolment_id: (await db().selectFrom('app.scheduled_sends').select('enrolment_id').where('id', '=', sendId).executeTakeFirstOrThrow()).enrolment_id, profile_id: profileId, campaign_id: 'welcome_series', step_id: 'test-step', template: 'welcome', due_at: new Date(), deferred_from: null, state_reason: null })
      .returning('id')
      .execute();
    await db().updateTable('app.enrolments').set({ state: 'active' }).where('profile_id', '=', profileId).execute();
    expect(await performSend(deps, another?.id as string)).toEqual({ state: 'skipped', reason: 'the address is suppressed (hard_bounce)' });
    expect(to(smtp.messages, 'bounce.me@example.com')).toEqual([]);
  });

  it('tracks opens and clicks only with analytics consent; a click redirects only to the signed destination', async () => {
    const decodeQp = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    // Without analytics: the links stay as written, no pixel.
    const plain = await subscriberWithWelcome('untracked', 'untracked@example.com');
    expect(await performSend(deps, plain.sendId)).toMatchObject({ state: 'sent' });
    const untracked = decodeQp(to(smtp.messages, 'untracked@example.com')[0]?.raw ?? '');
    expect(untracked).toContain('href="https://example.com/articles"');
    expect(untracked).not.toMatch(/\/c\/|\/o\//);

    const { profileId, sendId } = await subscriberWithWelcome('tracked', 'tracked@example.com');
    await appendLedger(db(), [{ profileId, purpose: 'analytics', decision: 'granted', occurredAt: new Date(), sourceKind: 'admin', method: 'admin' }]);
    expect(await performSend(deps, sendId)).toMatchObject({ state: 'sent' });
    const html = decodeQp(to(smtp.messages, 'tracked@example.com')[0]?.raw ?? '');
    const click = /href="http:\/\/[^"]+(\/c\/[A-Za-z0-9_.-]+)"/.exec(html)?.[1] as string;
    const open = /src="http:\/\/[^"]+(\/o\/[A-Za-z0-9_.-]+\.gif)"/.exec(html)?.[1] as string;
    expect(click).toBeDefined();
    expect(open).toBeDefined();
    // The unsubscribe link is never rewritten.
    expect(html).toMatch(/href="http:\/\/[^"]+\/u\/[A-Za-z0-9_.-]+"/);

    const redirected = await fetch(`${engine.url}${click}`, { redirect: 'manual' });
    expect(redirected.status).toBe(302);
    expect(redirected.headers.get('location')).toBe('https://example.com/articles');
    const pixel = await fetch(`${engine.url}${open}`);
    expect(pixel.headers.get('content-type')).toBe('image/gif');
    expect((await pixel.arrayBuffer()).byteLength).toBe(43);
    const events = await db().selectFrom('app.events').select(['name', 'source_id', 'properties']).where('profile_id', '=', profileId).where('name', 'like', 'Email %').orderBy('occurred_at').execute();
    expect(events.map((e) => e.name)).toEqual(['Email Clicked', 'Email Opened']);
    expect(events[0]?.properties).toMatchObject({ campaign: 'welcome_series', url: 'https://example.com/articles', send_id: sendId });

    // A tampered click token: a 400 page, never a redirect (no open redirect).
    const tampered = await fetch(`${engine.url}${click.slice(0, -3)}abc`, { redirect: 'manual' });
    expect(tampered.status).toBe(400);
    expect(tampered.headers.get('location')).toBeNull();
    // In the reader's language, as the other pages are.
    const inPolish = await fetch(`${engine.url}${click.slice(0, -3)}abc`, { redirect: 'manual', headers: { 'accept-language': 'pl-PL,pl;q=0.9,en;q=0.5' } });
    expect(inPolish.status).toBe(400);
    const page = await inPolish.text();
    expect(page).toContain('<html lang="pl">');
    expect(page).toContain('Ten link jest niepełny lub został zmieniony.');
  });

  it('a withdrawal committed after scheduling: zero sends, the skip recorded with its reason', async () => {
    const { profileId, sendId } = await subscriberWithWelcome('changed-mind', 'changed.mind@example.com');
    // Committed on its own (as if the rules' reaction to it had failed): the send-time check still holds.
    await appendLedger(db(), [{ profileId, purpose: 'email_marketing', decision: 'withdrawn', occurredAt: new Date(), sourceKind: 'write_key', method: 'api' }]);
    expect(await performSend(deps, sendId)).toEqual({ state: 'skipped', reason: expect.stringMatching(/^no consent at send time: refused: email_marketing withdrawn by api on /) });
    const decision = await db().selectFrom('app.decisions').select(['outcome', 'allowed']).where('profile_id', '=', profileId).where('outcome', '=', 'send_skipped').executeTakeFirst();
    expect(decision).toEqual({ outcome: 'send_skipped', allowed: false });
    expect(to(smtp.messages, 'changed.mind@example.com')).toEqual([]);
  });
});

describe('the email rate limit', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ EMAIL_RATE_LIMIT: '1' }, ['email']);
  });
  afterAll(async () => {
    await engine.stop();
  });

  it('holds the email workers to EMAIL_RATE_LIMIT a second, through the limiter BullMQ keeps in Redis', async () => {
    const { randomUUID } = await import('node:crypto');
    // Three jobs for confirmations that do not exist: each completes at once as "gone".
    for (let i = 0; i < 3; i++) await engine.services.queues.enqueue('email', 'confirmation', { confirmationId: randomUUID() });
    const limiterKey = `${engine.services.config.queuePrefix}:email:limiter`;
    // After the first job the limiter holds the others back: its key lives, and jobs still wait.
    await waitFor(async () => (await engine.services.redis.pttl(limiterKey)) > 0, { what: 'the email limiter engaged' });
    const counts = (await engine.services.queues.counts()).email;
    expect(counts.wait + counts.delayed + counts.prioritized + counts.active).toBeGreaterThan(0);
  });
});

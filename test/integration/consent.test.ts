import { sql } from 'kysely';
import { createApiKey } from '../../engine/auth/api-keys';
import { checkConsent } from '../../engine/consent/decisions';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForEvents, waitForReceipts } from '../support/engine';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { tcString } from '../support/tcf';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';

/**
 * Consent on the shipped rules/purposes.yaml (analytics, profiling and email_marketing all need
 * consent), through the real API, queues, PostgreSQL and a real SMTP server.
 */
describe('consent: ledger, browser signals, double opt-in, gating, preference page', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url }, ['events', 'email']);
  });
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });

  const db = () => engine.services.databases.db;
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });
  const consent = (body: Record<string, unknown>, headers: Record<string, string> = {}) =>
    postJson(`${engine.url}/v1/consent`, body, { ...auth(), ...headers });
  const ledgerCount = async () => Number((await sql<{ n: string }>`select count(*)::text as n from app.consent_ledger`.execute(db())).rows[0]?.n);
  /** A subscriber who confirmed from their mailbox: the one way email_marketing is granted. */
  const confirmedSubscriber = (email: string, userId: string, messageId: string) => subscribeWithDoubleOptIn(engine, smtp, { userId, email, messageId });
  const confirmationCount = async () =>
    Number((await sql<{ n: string }>`select count(*)::text as n from app.consent_confirmations`.execute(db())).rows[0]?.n);
  const ledgerOf = async (purpose: string, eventMessageIds: string[]) =>
    (
      await db()
        .selectFrom('app.consent_ledger')
        .selectAll()
        .where('purpose', '=', purpose)
        .where('event_message_id', 'in', eventMessageIds)
        .orderBy('id')
        .execute()
    );

  it('grant → withdraw → grant leaves three ledger rows and the right state; the ledger cannot be edited', async () => {
    const person = { userId: 'ledger-person' };
    const notice = { id: 'cookie_banner', version: 1 };
    const first = await consent({ ...person, messageId: 'l-1', grant: ['profiling'], notice, method: 'banner' });
    expect(first.status).toBe(200);
    expect(((await first.json()) as { consent: Record<string, { state: string; allowed: boolean }> }).consent.profiling).toMatchObject({
      state: 'granted',
      allowed: true,
    });
    const second = await consent({ ...person, messageId: 'l-2', withdraw: ['profiling'] });
    expect(((await second.json()) as { consent: Record<string, { state: string; allowed: boolean }> }).consent.profiling).toMatchObject({
      state: 'withdrawn',
      allowed: false,
    });
    const third = await consent({ ...person, messageId: 'l-3', grant: ['profiling'], notice, method: 'banner' });
    const body = (await third.json()) as { success: boolean; consent: Record<string, { state: string; allowed: boolean; legalBasis: string }> };
    expect(body.success).toBe(true);
    expect(body.consent.profiling).toMatchObject({ state: 'granted', allowed: true, legalBasis: 'consent' });
    expect(body.consent.email_marketing).toMatchObject({ state: 'not_asked', allowed: false });

    const rows = await ledgerOf('profiling', ['l-1', 'l-2', 'l-3']);
    expect(rows.map((r) => [r.decision, r.method, r.source_kind, r.notice_id, r.notice_version])).toEqual([
      ['granted', 'banner', 'write_key', 'cookie_banner', 1],
      ['withdrawn', 'api', 'write_key', null, null],
      ['granted', 'banner', 'write_key', 'cookie_banner', 1],
    ]);
    expect(rows.every((r) => r.source_id === engine.sourceId && r.ip_prefix === '127.0.0.0')).toBe(true);
    expect(rows[0]?.notice_hash?.toString('hex')).toMatch(/^[0-9a-f]{64}$/);
    const current = await db().selectFrom('app.consent_current').selectAll().where('profile_id', '=', rows[0]?.profile_id as string).execute();
    expect(current.map((c) => [c.purpose, c.decision])).toEqual([['profiling', 'granted']]);

    // Replaying a consent request (same messageId) records nothing twice.
    await consent({ ...person, messageId: 'l-3', grant: ['profiling'], notice, method: 'banner' });
    expect(await ledgerOf('profiling', ['l-3'])).toHaveLength(1);

    // Append-only: the application's normal paths cannot rewrite or remove history.
    const id = rows[0]?.id as string;
    await expect(sql`update app.consent_ledger set decision = 'withdrawn' where id = ${id}`.execute(db())).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(sql`delete from app.consent_ledger where id = ${id}`.execute(db())).rejects.toThrow(/append-only: DELETE refused/);
    await expect(sql`truncate app.consent_ledger`.execute(db())).rejects.toThrow(/append-only: TRUNCATE refused/);
    expect(await ledgerOf('profiling', ['l-1', 'l-2', 'l-3'])).toHaveLength(3);
    // Only erasure, which says so for its own transaction, may delete (rolled back here).
    await expect(
      db().transaction().execute(async (trx) => {
        await sql`set local consentflow.erasure = 'on'`.execute(trx);
        const deleted = await sql`delete from app.consent_ledger where id = ${id}`.execute(trx);
        expect(Number(deleted.numAffectedRows)).toBe(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
  });

  it('a request with Sec-GPC: 1 stores its event unlinked and records a browser_signal objection, once', async () => {
    const gpc = { ...auth(), 'sec-gpc': '1' };
    for (const messageId of ['gpc-1', 'gpc-2']) {
      const res = await postJson(`${engine.url}/v1/page`, { messageId, anonymousId: 'gpc-visitor', name: 'Home' }, gpc);
      expect(res.status).toBe(200);
    }
    await waitForReceipts(engine.services, ['gpc-1', 'gpc-2']);
    // Not stored as events at all: only counted, with nothing that points at the visitor.
    expect(await db().selectFrom('app.events').select('profile_id').where('message_id', 'in', ['gpc-1', 'gpc-2']).execute()).toEqual([]);
    const counted = await db().selectFrom('app.event_counts').select(['type', 'name', 'count']).where('source_id', '=', engine.sourceId).where('name', '=', 'Home').execute();
    expect(counted).toEqual([{ type: 'page', name: 'Home', count: '2' }]);
    const objections = await db()
      .selectFrom('app.consent_ledger')
      .select(['purpose', 'decision', 'source_kind', 'method', 'source_ref'])
      .where('event_message_id', 'in', ['gpc-1', 'gpc-2'])
      .orderBy('purpose')
      .execute();
    expect(objections).toEqual([
      { purpose: 'analytics', decision: 'objected', source_kind: 'browser_signal', method: 'browser_signal', source_ref: 'Sec-GPC: 1' },
      { purpose: 'profiling', decision: 'objected', source_kind: 'browser_signal', method: 'browser_signal', source_ref: 'Sec-GPC: 1' },
    ]);
  });

  it('links events to a profile only once analytics is granted; a withdrawal unlinks what follows', async () => {
    const track = (messageId: string) => postJson(`${engine.url}/v1/track`, { messageId, anonymousId: 'visitor-a', event: 'Viewed Product' }, auth());
    await track('a-before');
    await waitForReceipts(engine.services, ['a-before']);
    // The convention for sites with an existing SDK: a `Consent Updated` track event.
    const updated = await postJson(
      `${engine.url}/v1/track`,
      { messageId: 'a-consent', anonymousId: 'visitor-a', event: 'Consent Updated', properties: { purposes: { analytics: true }, notice: { id: 'cookie_banner', version: 1 } } },
      auth(),
    );
    expect(updated.status).toBe(200);
    await track('a-after');
    await waitForEvents(engine.services, 1, sql`message_id = 'a-after'`);
    await consent({ anonymousId: 'visitor-a', withdraw: ['analytics'], messageId: 'a-withdraw' });
    await track('a-withdrawn');
    await waitForReceipts(engine.services, ['a-withdrawn']);
    // Only what consent allowed is stored as the person's events; the rest was counted anonymously.
    // The withdrawal's own event (a-withdraw) already falls under it.
    const rows = await db().selectFrom('app.events').select(['message_id', 'profile_id']).where('message_id', 'like', 'a-%').orderBy('occurred_at').execute();
    expect(rows.map((r) => r.message_id)).toEqual(['a-consent', 'a-after']);
    expect(rows.every((r) => r.profile_id !== null)).toBe(true);
    const grant = await ledgerOf('analytics', ['a-consent']);
    expect(grant.map((r) => [r.decision, r.method, r.notice_id])).toEqual([['granted', 'banner', 'cookie_banner']]);
  });

  it('an anonymous visitor who identifies brings their consent history to the known profile', async () => {
    await consent({ userId: 'm-user', grant: ['profiling'], notice: { id: 'cookie_banner', version: 1 }, messageId: 'm-1' });
    await consent({ anonymousId: 'm-anon', grant: ['analytics'], notice: { id: 'cookie_banner', version: 1 }, messageId: 'm-2' });
    const known = (await ledgerOf('profiling', ['m-1']))[0]?.profile_id as string;
    const anonymous = (await ledgerOf('analytics', ['m-2']))[0]?.profile_id as string;
    expect(anonymous).not.toBe(known);
    const identify = await postJson(`${engine.url}/v1/identify`, { messageId: 'm-3', userId: 'm-user', anonymousId: 'm-anon' }, auth());
    expect(identify.status).toBe(200);
    await waitForEvents(engine.services, 1, sql`message_id = 'm-3'`);
    const current = await db().selectFrom('app.consent_current').select(['purpose', 'decision']).where('profile_id', '=', known).orderBy('purpose').execute();
    expect(current).toEqual([
      { purpose: 'analytics', decision: 'granted' },
      { purpose: 'profiling', decision: 'granted' },
    ]);
    // Copied, not rewritten: the original row stays as it was, the copy names it.
    const copies = await db().selectFrom('app.consent_ledger').select(['merged_from']).where('profile_id', '=', known).where('purpose', '=', 'analytics').execute();
    const original = (await ledgerOf('analytics', ['m-2'])).find((r) => r.profile_id === anonymous);
    expect(copies).toEqual([{ merged_from: original?.id }]);
    // Linked under the survivor, since analytics came with the merge.
    const event = await db().selectFrom('app.events').select('profile_id').where('message_id', '=', 'm-3').executeTakeFirst();
    expect(event?.profile_id).toBe(known);
  });

  it('the gate: a purpose never granted, then granted, then withdrawn, each decision recorded with its reason', async () => {
    const person = { userId: 'gated-person' };
    await consent({ ...person, grant: ['profiling'], notice: { id: 'cookie_banner', version: 1 }, messageId: 'g-0' });
    const profileId = (await ledgerOf('profiling', ['g-0']))[0]?.profile_id as string;
    const catalog = engine.services.rules.purposes;
    const ask = () =>
      checkConsent(db(), catalog, { profileId, action: 'campaign:welcome:send', need: { purposes: ['email_marketing'] }, ref: { campaign: 'welcome' } });

    const refused = await ask();
    expect(refused).toMatchObject({ allowed: false, missing: [{ purpose: 'email_marketing', reason: 'never_granted' }] });
    await confirmedSubscriber('gated@example.com', 'gated-person', 'g-1');
    expect(await ask()).toMatchObject({ allowed: true, missing: [] });
    await consent({ ...person, withdraw: ['email_marketing'], messageId: 'g-2' });
    const after = await ask();
    expect(after).toMatchObject({ allowed: false, missing: [{ purpose: 'email_marketing', reason: 'withdrawn' }] });
    expect(after.reason).toMatch(/^refused: email_marketing withdrawn by api on \d{4}-/);

    const decisions = await db().selectFrom('app.decisions').selectAll().where('profile_id', '=', profileId).where('action', '=', 'campaign:welcome:send').orderBy('id').execute();
    expect(decisions.map((d) => [d.action, d.allowed, d.missing])).toEqual([
      ['campaign:welcome:send', false, ['email_marketing:never_granted']],
      ['campaign:welcome:send', true, []],
      ['campaign:welcome:send', false, ['email_marketing:withdrawn']],
    ]);
    expect(decisions[1]?.reason).toMatch(/^allowed: email_marketing granted by double_opt_in on /);
    expect(decisions[0]?.ref).toEqual({ campaign: 'welcome' });
  });

  it('maps an IAB TCF v2.2 string to purposes by their tcf_purposes, with method tcf', async () => {
    // Consent to every TCF purpose analytics maps (1, 7, 8, 9), but not to those of profiling.
    const res = await consent({ anonymousId: 'tcf-visitor', tcString: tcString([1, 7, 8, 9]), messageId: 'tcf-1' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { consent: Record<string, { state: string }> };
    expect(body.consent).toMatchObject({ analytics: { state: 'granted' }, profiling: { state: 'withdrawn' }, email_marketing: { state: 'not_asked' } });
    const rows = await db().selectFrom('app.consent_ledger').select(['purpose', 'decision', 'method', 'source_ref']).where('event_message_id', '=', 'tcf-1').orderBy('purpose').execute();
    expect(rows).toEqual([
      { purpose: 'analytics', decision: 'granted', method: 'tcf', source_ref: expect.stringMatching(/^IAB TCF v2 string, CMP 300, policy version \d+/) },
      { purpose: 'profiling', decision: 'withdrawn', method: 'tcf', source_ref: expect.stringMatching(/^IAB TCF v2 string/) },
    ]);
  });

  it('a privacy officer records a withdrawal made by another channel; other roles cannot', async () => {
    await confirmedSubscriber('phoned-in@example.com', 'phoned-in', 'ph-1');
    const officer = (await createApiKey(db(), { role: 'privacy_officer', name: 'dpo' })).key;
    const marketer = (await createApiKey(db(), { role: 'marketer', name: 'marketing' })).key;
    const admin = (body: unknown, key: string) =>
      postJson(`${engine.url}/admin/v1/subjects/consent`, body, { authorization: `Bearer ${key}` });
    const request = { userId: 'phoned-in', withdraw: ['email_marketing'], object: ['profiling'], reference: 'ticket 4711' };
    expect((await admin(request, marketer)).status).toBe(403);
    const res = await admin(request, officer);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { consent: Record<string, { state: string; allowed: boolean }> };
    expect(body.consent.email_marketing).toMatchObject({ state: 'withdrawn', allowed: false });
    expect(body.consent.profiling).toMatchObject({ state: 'objected', allowed: false });
    const profileId = (await ledgerOf('email_marketing', ['ph-1']))[0]?.profile_id as string;
    const rows = await db().selectFrom('app.consent_ledger').select(['purpose', 'decision', 'method', 'source_kind', 'source_ref']).where('profile_id', '=', profileId).where('method', '=', 'admin').orderBy('purpose').execute();
    expect(rows).toEqual([
      { purpose: 'email_marketing', decision: 'withdrawn', method: 'admin', source_kind: 'admin', source_ref: expect.stringMatching(/^key [0-9a-f-]{36}: ticket 4711$/) },
      { purpose: 'profiling', decision: 'objected', method: 'admin', source_kind: 'admin', source_ref: expect.stringMatching(/ticket 4711$/) },
    ]);
    const before = await ledgerCount();
    expect((await admin({ ...request, userId: 'nobody-known' }, officer)).status).toBe(404);
    const bad = await admin({ ...request, withdraw: ['newsletter'] }, officer);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('unknown purpose \\"newsletter\\"');
    expect((await admin({ withdraw: ['profiling'], reference: 'x' }, officer)).status).toBe(400);
    expect(await ledgerCount()).toBe(before);
  });

  it('double opt-in: sign-up → confirmation email → link → consent with method double_opt_in and the notice version', async () => {
    const before = smtp.messages.length;
    const signup = await consent({
      email: 'Newsletter.Reader@example.com',
      anonymousId: 'doi-visitor',
      grant: ['email_marketing'],
      notice: { id: 'newsletter_form', version: 1 },
      method: 'double_opt_in',
      source: { form: 'footer-newsletter' },
      messageId: 'doi-1',
    });
    expect(signup.status).toBe(202);
    const body = (await signup.json()) as { consent: Record<string, { allowed: boolean; pendingConfirmation: boolean }> };
    expect(body.consent.email_marketing).toMatchObject({ allowed: false, pendingConfirmation: true });

    const [mail] = (await smtp.waitForMessages(before + 1)).slice(before);
    expect(mail?.to).toEqual(['newsletter.reader@example.com'.replace('newsletter.reader', 'Newsletter.Reader')]);
    expect(mail?.subject).toBe('Please confirm your subscription');
    const link = /https?:\/\/\S+\/v1\/consent\/confirm\?token=([A-Za-z0-9_.-]+)/.exec(mail?.text ?? '');
    expect(link).not.toBeNull();
    const token = link?.[1] as string;
    const confirmUrl = `${engine.url}/v1/consent/confirm?token=${token}`;

    // Opening the link (as a mail scanner would) shows a button and grants nothing.
    const page = await fetch(confirmUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('referrer-policy')).toBe('same-origin');
    expect(await page.text()).toContain('Yes, subscribe me');
    expect(await ledgerOf('email_marketing', ['doi-1'])).toEqual([]);

    // A tampered link is refused with a clear page and changes nothing.
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    const bad = await fetch(`${engine.url}/v1/consent/confirm`, { method: 'POST', body: new URLSearchParams({ token: tampered }) });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('This link is not valid');
    expect(await ledgerOf('email_marketing', ['doi-1'])).toEqual([]);

    const click = await fetch(`${engine.url}/v1/consent/confirm`, { method: 'POST', body: new URLSearchParams({ token }) });
    expect(click.status).toBe(200);
    const confirmedPage = await click.text();
    expect(confirmedPage).toContain('your subscription is confirmed');
    const granted = await ledgerOf('email_marketing', ['doi-1']);
    expect(granted.map((r) => [r.decision, r.method, r.source_kind, r.notice_id, r.notice_version, r.source_ref])).toEqual([
      ['granted', 'double_opt_in', 'email_link', 'newsletter_form', 1, 'form:footer-newsletter'],
    ]);
    // A second click grants nothing more.
    const again = await fetch(`${engine.url}/v1/consent/confirm`, { method: 'POST', body: new URLSearchParams({ token }) });
    expect(await again.text()).toContain('already confirmed');
    expect(await ledgerOf('email_marketing', ['doi-1'])).toHaveLength(1);

    // The preference page linked from the confirmation: withdraw by one untick.
    const prefs = /href="([^"]*\/p\/[^"]+)"/.exec(confirmedPage)?.[1] as string;
    const prefsPath = new URL(prefs.replace(/&amp;/g, '&')).pathname;
    const shown = await fetch(`${engine.url}${prefsPath}`, { headers: { 'accept-language': 'pl-PL,pl;q=0.9' } });
    expect(shown.status).toBe(200);
    const html = await shown.text();
    expect(html).toContain('Twoje ustawienia prywatności');
    expect(html).toMatch(/name="purpose" value="email_marketing" checked/);
    const form = new URLSearchParams([['shown', 'email_marketing'], ['shown', 'profiling'], ['shown', 'analytics'], ['purpose', 'analytics']]);
    const saved = await fetch(`${engine.url}${prefsPath}`, { method: 'POST', body: form });
    expect(saved.status).toBe(200);
    expect(await saved.text()).toMatch(/name="purpose" value="analytics" checked/);
    const profileId = granted[0]?.profile_id as string;
    const viaPage = await db().selectFrom('app.consent_ledger').select(['purpose', 'decision', 'method', 'notice_id']).where('profile_id', '=', profileId).where('method', '=', 'preference_page').orderBy('purpose').execute();
    expect(viaPage).toEqual([
      { purpose: 'analytics', decision: 'granted', method: 'preference_page', notice_id: 'preference_page' },
      { purpose: 'email_marketing', decision: 'withdrawn', method: 'preference_page', notice_id: 'preference_page' },
    ]);
    const forged = await fetch(`${engine.url}/p/${prefsPath.split('/').pop()?.slice(0, -3)}xyz`, { method: 'POST', body: form });
    expect(forged.status).toBe(400);
    // A preference link is not a confirmation link: the kinds are signed apart.
    const wrongKind = await fetch(`${engine.url}/v1/consent/confirm`, { method: 'POST', body: new URLSearchParams({ token: prefsPath.split('/').pop() as string }) });
    expect(wrongKind.status).toBe(400);
  });

  it('an expired confirmation link is refused with a clear page and grants nothing', async () => {
    const before = smtp.messages.length;
    // The sign-up through the events worker: the `newsletter_subscribed` convention.
    const res = await postJson(
      `${engine.url}/v1/track`,
      {
        messageId: 'doi-2',
        anonymousId: 'late-clicker',
        event: 'newsletter_subscribed',
        context: { traits: { email: 'late@example.com' } },
        properties: { notice: { id: 'newsletter_form', version: 1 } },
      },
      auth(),
    );
    expect(res.status).toBe(200);
    const [mail] = (await smtp.waitForMessages(before + 1)).slice(before);
    const token = /confirm\?token=([A-Za-z0-9_.-]+)/.exec(mail?.text ?? '')?.[1] as string;
    await sql`update app.consent_confirmations set expires_at = now() - interval '1 second' where event_message_id = 'doi-2'`.execute(db());
    const click = await fetch(`${engine.url}/v1/consent/confirm`, { method: 'POST', body: new URLSearchParams({ token }) });
    expect(click.status).toBe(410);
    expect(await click.text()).toContain('This link has expired');
    expect(await ledgerOf('email_marketing', ['doi-2'])).toEqual([]);
  });

  it('refuses invalid purposes, unknown notices and malformed bodies with clear 400s, writing nothing', async () => {
    const before = await ledgerCount();
    const confirmationsBefore = await confirmationCount();
    const cases: Array<[Record<string, unknown> | string, RegExp]> = [
      [{ userId: 'x', grant: ['newsletter'], notice: { id: 'cookie_banner', version: 1 } }, /grant\.0: unknown purpose "newsletter"; declared in rules\/purposes\.yaml: email_marketing, profiling, analytics/],
      [{ userId: 'x', grant: ['analytics'], notice: { id: 'popup', version: 1 } }, /notice: unknown notice "popup"/],
      [{ userId: 'x', grant: ['analytics'], notice: { id: 'cookie_banner', version: 7 } }, /notice: notice "cookie_banner" has no version 7; declared versions: 1/],
      [{ email: 'y@example.com', grant: ['email_marketing'], notice: { id: 'cookie_banner', version: 1 }, method: 'double_opt_in' }, /does not describe email_marketing/],
      [{ userId: 'x', grant: ['analytics'] }, /notice: expected \{"id", "version"\} of the notice shown/],
      [{ grant: ['analytics'], notice: { id: 'cookie_banner', version: 1 } }, /expected anonymousId, userId or email/],
      [{ userId: 'x' }, /expected at least one purpose in grant or withdraw/],
      [{ userId: 'x', grant: ['Analytics!'], notice: { id: 'cookie_banner', version: 1 } }, /grant\.0: expected a purpose name/],
      [{ userId: 'x', withdraw: ['analytics'], colour: 'red' }, /colour|unrecognized/i],
      [{ userId: 'x', grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 }, method: 'double_opt_in' }, /email: a double opt-in needs the address/],
      // A form naming an address proves nothing about who owns it.
      [{ email: 'victim@example.com', grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 }, method: 'form' }, /grant: email_marketing is granted only by double opt-in/],
      [{ userId: 'x', tcString: 'not a tc string!' }, /tcString: /],
      ['{"userId": "x", "grant": [', /JSON/i],
    ];
    for (const [body, message] of cases) {
      const res = await consent(body as Record<string, unknown>);
      const text = ((await res.json()) as { error: { message: string } }).error.message;
      expect({ status: res.status, text }).toEqual({ status: 400, text: expect.stringMatching(message) });
    }
    // The same checks on the event convention, before anything is queued.
    const event = await postJson(
      `${engine.url}/v1/track`,
      { anonymousId: 'x', event: 'Consent Updated', properties: { purposes: { newsletter: true }, notice: { id: 'cookie_banner', version: 1 } } },
      auth(),
    );
    expect(event.status).toBe(400);
    expect(await event.text()).toMatch(/properties\.purposes\.newsletter: unknown purpose/);
    // A newsletter sign-up must name one deliverable address: a list would make the engine a relay.
    // The address rule (engine/email/address.ts) refuses it at ingestion, naming the field.
    for (const email of ['a@example.com, b@example.org', 'x@']) {
      const signup = await postJson(
        `${engine.url}/v1/track`,
        { anonymousId: 'x', event: 'newsletter_subscribed', traits: { email }, properties: { notice: { id: 'newsletter_form', version: 1 } } },
        auth(),
      );
      expect(signup.status).toBe(400);
      expect(await signup.text()).toMatch(/traits\.email: expected one plain email address local@domain: /);
    }
    // POST /v1/consent applies the same rule, not zod's looser one: a local part over 64 octets and
    // a domain label over 63 (RFC 5321 §4.5.3.1) pass zod's check.
    for (const email of [`${'a'.repeat(70)}@example.com`, `ann@${'b'.repeat(64)}.com`]) {
      const consent = await postJson(`${engine.url}/v1/consent`, { email, grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 } }, auth());
      expect(consent.status).toBe(400);
      expect(await consent.text()).toMatch(/"email: expected one plain email address local@domain: /);
    }
    expect(await ledgerCount()).toBe(before);
    expect(await confirmationCount()).toBe(confirmationsBefore);
  });

  it('follows the order of recording, not the client clock, and says when a messageId was seen before', async () => {
    const person = { userId: 'clock-person' };
    await consent({ ...person, grant: ['profiling'], notice: { id: 'cookie_banner', version: 1 }, messageId: 'c-1' });
    // A withdrawal from a device whose clock is ten minutes slow still wins (GDPR Art. 7(3)).
    const slow = new Date(Date.now() - 10 * 60_000).toISOString();
    const withdrawn = await consent({ ...person, withdraw: ['profiling'], timestamp: slow, messageId: 'c-2' });
    expect(((await withdrawn.json()) as { consent: Record<string, { state: string }> }).consent.profiling?.state).toBe('withdrawn');
    // Far outside the window tracking events have: refused, nothing written.
    const ancient = await consent({ ...person, grant: ['profiling'], notice: { id: 'cookie_banner', version: 1 }, timestamp: '0001-01-01T00:00:00Z' });
    expect(ancient.status).toBe(400);
    expect(await ancient.text()).toContain('timestamp: expected a time within the last 5 years');
    // The same messageId with another body records nothing, and the answer says it was a duplicate.
    const replay = await consent({ ...person, grant: ['profiling'], notice: { id: 'cookie_banner', version: 1 }, messageId: 'c-2' });
    const body = (await replay.json()) as { duplicate?: boolean; consent: Record<string, { state: string }> };
    expect(body).toMatchObject({ duplicate: true, consent: { profiling: { state: 'withdrawn' } } });
    expect(await ledgerOf('profiling', ['c-1', 'c-2'])).toHaveLength(2);
  });
});

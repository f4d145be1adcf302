import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Browser } from 'playwright-core';
import { createSource } from '../../engine/ingest/sources';
import type { TestEngine } from '../support/engine';
import { shippedCatalog } from '../support/rules';
import type { TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';
import { deviceStorage, type KitPage, openKitPage } from './support/browser';
import { type MailEngine, startMailEngine } from './support/mail-engine';
import { type RecordingProxy, startRecordingProxy } from './support/recorder';
import { shopPage, startTestSite, type TestSite } from './support/site';
import { ledgerRows } from './support/stores';

jest.setTimeout(90_000);

const NOTICE_TEXT = shippedCatalog().notice('newsletter_form', 1)?.text as string;
const NOTICE_HASH = createHash('sha256').update(NOTICE_TEXT, 'utf8').digest('hex');

/** A newsletter form as the README shows it: two declared fields, one that is not, a consent box. */
function newsletterForm(label: string): string {
  return `<form data-cf-form="newsletter" data-cf-purposes="email_marketing">
<p><label for="email">Email</label> <input id="email" type="email" name="email" data-cf-field="email" required></p>
<p><label for="first">First name</label> <input id="first" name="first_name" data-cf-field="first_name"></p>
<p><label for="phone">Phone</label> <input id="phone" name="phone"></p>
<p><input type="checkbox" id="nl" data-cf-consent> <label for="nl">${label}</label></p>
<p><button type="submit">Subscribe</button></p>
<p data-cf-status role="status"></p>
</form>`;
}

/**
 * Form capture in a real browser: the declared fields only, sent as consent (a pending double
 * opt-in, as email_marketing asks) and identify, with the hash of the consent box's label in the
 * proof; the person confirms from the email at a real SMTP server, and the ledger holds the grant
 * with that hash.
 */
describe('website kit (cf.js) in Chromium: form capture with double opt-in', () => {
  let harness: MailEngine;
  let smtp: TestSmtpServer;
  let engine: TestEngine;
  let site: TestSite;
  let browser: Browser;
  let proxy: RecordingProxy;
  const open: KitPage[] = [];

  beforeAll(async () => {
    // PUBLIC_URL is the engine's own address (support/mail-engine.ts), so the link in the email works in the browser.
    [harness, site] = await Promise.all([startMailEngine({ queues: ['events', 'email'] }), startTestSite()]);
    ({ engine, smtp, browser } = harness);
    proxy = await startRecordingProxy(engine.url);
  });
  afterAll(async () => {
    await Promise.all(open.map((p) => p.close()));
    await proxy?.close();
    await site?.close();
    await harness?.close();
  });

  async function shop(pagePath: string, label: string) {
    const source = await createSource(engine.services.databases.db, `shop ${pagePath}`, [site.allowedOrigin]);
    site.page(pagePath, shopPage({ engineUrl: proxy.url, writeKey: source.writeKey, body: newsletterForm(label) }));
    const kit = await openKitPage(browser);
    open.push(kit);
    await kit.page.goto(`${site.allowedOrigin}${pagePath}`);
    await kit.page.waitForFunction('typeof window.cf === "object"');
    const sent = () => proxy.requests.filter((r) => r.writeKey === source.writeKey);
    return { source, kit, page: kit.page, sent };
  }

  it('sends the declared fields as a pending double opt-in with the label hash; the confirmation link grants, with the hash in the ledger', async () => {
    const { source, kit, page, sent } = await shop('/newsletter', NOTICE_TEXT);
    await page.fill('#email', 'ola@example.com');
    await page.fill('#first', 'Ola');
    await page.fill('#phone', '+48 601 234 567');
    await page.check('#nl');
    await page.click('button[type="submit"]');
    await page.waitForSelector('form[data-cf-state="pending"]');
    expect(await page.locator('[data-cf-status]').textContent()).toBe('Thank you! Please confirm your subscription with the link we have just emailed you.');

    const consent = sent().find((r) => r.path === '/v1/consent');
    const identify = sent().find((r) => r.path === '/v1/identify');
    expect(consent?.status).toBe(202);
    expect(consent?.body).toMatchObject({
      email: 'ola@example.com',
      grant: ['email_marketing'],
      notice: { id: 'newsletter_form', version: 1 },
      method: 'double_opt_in',
      source: { form: `newsletter label-sha256=${NOTICE_HASH}` },
    });
    expect(identify?.status).toBe(200);
    expect((identify?.body as { traits: unknown }).traits).toEqual({ email: 'ola@example.com', first_name: 'Ola' });
    // The same per-submission id in both, never kept on the device.
    expect((identify?.body as { anonymousId: string }).anonymousId).toBe((consent?.body as { anonymousId: string }).anonymousId);
    // The undeclared field went nowhere.
    expect(JSON.stringify(sent())).not.toMatch(/phone|601 234 567/);
    expect(await deviceStorage(kit)).toEqual({ local: {}, session: {}, cookies: 0 });

    // Pending: nothing granted yet.
    expect(await ledgerRows(engine.services, source.id)).toEqual([]);
    const pending = await sql<{ source_ref: string; confirmed_at: Date | null }>`
      select source_ref, confirmed_at from app.consent_confirmations where source_id = ${source.id}`.execute(engine.services.databases.db);
    expect(pending.rows).toEqual([{ source_ref: `form:newsletter label-sha256=${NOTICE_HASH}`, confirmed_at: null }]);

    // The person opens the link from the email and confirms.
    const mail = await waitFor(() => smtp.messages.find((m) => m.to.includes('ola@example.com')), { what: 'the confirmation email' });
    const link = /https?:\/\/\S+\/v1\/consent\/confirm\?token=[A-Za-z0-9_.-]+/.exec(mail.text)?.[0] as string;
    expect(link).toMatch(new RegExp(`^${engine.url}/`));
    const inbox = await openKitPage(browser);
    open.push(inbox);
    await inbox.page.goto(link);
    await inbox.page.getByRole('button', { name: 'Yes, subscribe me' }).waitFor();
    expect(await ledgerRows(engine.services, source.id)).toEqual([]); // opening the link alone grants nothing
    // The person presses the button in the browser: the page's own form POST (same-origin.ts lets it
    // through on Sec-Fetch-Site; under the old Referrer-Policy no-referrer Chromium sent Origin: null
    // and the engine refused its own button).
    await Promise.all([inbox.page.waitForNavigation(), inbox.page.getByRole('button', { name: 'Yes, subscribe me' }).click()]);
    expect(await inbox.page.content()).toContain('your subscription is confirmed');

    const rows = await ledgerRows(engine.services, source.id);
    expect(rows).toEqual([
      {
        purpose: 'email_marketing',
        decision: 'granted',
        method: 'double_opt_in',
        source_kind: 'email_link',
        source_ref: `form:newsletter label-sha256=${NOTICE_HASH}`,
        notice_id: 'newsletter_form',
        notice_version: 1,
        notice_hash: NOTICE_HASH,
      },
    ]);
  });

  it('keeps the hash of the label actually shown when it differs from the notice, and sends nothing while the box is unticked', async () => {
    const label = 'Send me news  and\n offers.';
    const { source, page, sent } = await shop('/other-label', label);
    await page.fill('#email', 'piotr@example.com');
    await page.click('button[type="submit"]');
    await page.waitForSelector('form[data-cf-state="unticked"]');
    expect(sent().filter((r) => r.path === '/v1/consent' || r.path === '/v1/identify')).toEqual([]);

    await page.check('#nl');
    await page.click('button[type="submit"]');
    await page.waitForSelector('form[data-cf-state="pending"]');
    const labelHash = createHash('sha256').update('Send me news and offers.', 'utf8').digest('hex');
    expect(sent().find((r) => r.path === '/v1/consent')?.body).toMatchObject({
      notice: { id: 'newsletter_form', version: 1 },
      source: { form: `newsletter label-sha256=${labelHash}` },
    });
    const pending = await sql<{ source_ref: string }>`select source_ref from app.consent_confirmations where source_id = ${source.id}`.execute(
      engine.services.databases.db,
    );
    expect(pending.rows).toEqual([{ source_ref: `form:newsletter label-sha256=${labelHash}` }]);
  });
});

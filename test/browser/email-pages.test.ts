import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { PAGE_STRINGS, type PageLanguage, pageRetention } from '../../engine/http/pages/strings';
import { findProfileId } from '../../engine/identity/lookup';
import { basicAuth, postJson } from '../support/engine';
import { rulesWithoutQuietHours } from '../support/sends';
import { shippedCatalog } from '../support/rules';
import { axeViolations, describeViolations } from './support/axe';
import { ARTIFACTS_DIR, type KitPage, openKitPage } from './support/browser';
import { linkIn, type MailEngine, requestsElsewhere, startMailEngine, tabTo, waitForMail } from './support/mail-engine';
import { englishLeftIn } from './support/page-strings';

jest.setTimeout(180_000);

const LOCALES: Record<PageLanguage, string> = { en: 'en-GB', pl: 'pl-PL' };
const catalog = shippedCatalog();
/** English a page takes from elsewhere than its strings table: the purposes' descriptions, the retention wording. */
const ENGLISH_ELSEWHERE = [...catalog.all().map((p) => p.description.en ?? ''), ...catalog.all().map((p) => pageRetention('en', p.retention))];

/**
 * How a person operates a page: by keyboard alone in a browser with JavaScript (Tab to the control,
 * Space on a checkbox, Enter or Space on a button), or by mouse in a browser with JavaScript off.
 */
type Mode = 'keyboard' | 'no-javascript';

/**
 * The pages people open from the engine's emails, in Chromium, reached from the links of real emails
 * (the double opt-in confirmation, the welcome's preferences and unsubscribe links, the "forget me"
 * confirmation), in English and in Polish (chosen by the browser's Accept-Language, which Playwright
 * sets from the context's locale): axe-core finds no violation on any of them nor on what their forms
 * answer, they load nothing from any host but the engine, work with JavaScript off (plain form
 * posts), can be operated by keyboard alone, and the Polish ones have no English left. Every form's
 * effect is checked where it lands: the consent ledger and the erasure requests.
 */
describe('pages people open from emails, in Chromium: accessible, English and Polish, no JavaScript, nothing external', () => {
  let harness: MailEngine;
  const open: KitPage[] = [];

  beforeAll(async () => {
    harness = await startMailEngine({ env: { RULES_DIR: rulesWithoutQuietHours() }, queues: ['events', 'email', 'journeys'] });
  });
  afterAll(async () => {
    await Promise.all(open.map((p) => p.close()));
    await harness?.close();
  });

  async function ledger(profileId: string) {
    return harness.engine.services.databases.db
      .selectFrom('app.consent_ledger')
      .select(['purpose', 'decision', 'method'])
      .where('profile_id', '=', profileId)
      .orderBy('id')
      .execute();
  }

  describe.each(['en', 'pl'] as const)('in %s', (lang) => {
    const t = PAGE_STRINGS[lang];

    /** What every page must be: in the language, titled, headed, free of axe violations (and of English, in Polish). Then its screenshot. */
    async function checkPage(page: Page, name: string, title: string, mode: Mode): Promise<void> {
      expect(await page.title()).toBe(title);
      expect(await page.locator('html').getAttribute('lang')).toBe(lang);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(title);
      expect(await page.getByRole('main').count()).toBe(1);
      // Every rule of axe-core on: none is excluded. With JavaScript off, axe cannot run in the page
      // itself (its timers never fire): it checks the very HTML that page received, set into a page
      // of a context with JavaScript on (the styles are inline, so it renders the same).
      const audited = mode === 'keyboard' ? page : await axePage();
      if (audited !== page) await audited.setContent(await page.content());
      expect([name, describeViolations(await axeViolations(audited))]).toEqual([name, []]);
      const visible = `${await page.title()}\n${await page.locator('body').innerText()}`;
      if (lang === 'pl') expect([name, englishLeftIn(visible, ENGLISH_ELSEWHERE)]).toEqual([name, []]);
      await page.screenshot({ path: path.join(ARTIFACTS_DIR, `email-page-${name}-${lang}-${mode}.png`), fullPage: true });
    }

    let axeKit: KitPage | undefined;
    async function axePage(): Promise<Page> {
      if (!axeKit) {
        axeKit = await openKitPage(harness.browser, { locale: LOCALES[lang] });
        open.push(axeKit);
      }
      return axeKit.page;
    }

    /** Ticks a checkbox: Space on it after tabbing there, or a click. */
    async function tick(page: Page, box: Locator, mode: Mode): Promise<void> {
      if (mode === 'keyboard') {
        await tabTo(page, box);
        await page.keyboard.press('Space');
      } else {
        await box.click();
      }
      expect(await box.isChecked()).toBe(true);
    }

    /** Presses a form's button and waits for the page its form post answers with. */
    async function press(page: Page, button: Locator, mode: Mode, key: 'Enter' | 'Space' = 'Enter'): Promise<void> {
      if (mode === 'keyboard') {
        await tabTo(page, button);
        await Promise.all([page.waitForNavigation(), page.keyboard.press(key)]);
      } else {
        await Promise.all([page.waitForNavigation(), button.click()]);
      }
    }

    it.each(['keyboard', 'no-javascript'] as const)(
      'confirmation, preferences, unsubscribe and "forget me", operated by %s: accessible, in the language, only the engine, and each form does what it says',
      async (mode) => {
        const { engine, smtp, browser } = harness;
        const userId = `reader-${lang}-${mode}`;
        const email = `${userId}@example.com`;
        const kit = await openKitPage(browser, { locale: LOCALES[lang], javaScriptEnabled: mode === 'keyboard' });
        open.push(kit);
        const { page } = kit;
        const requests = requestsElsewhere(page, engine.url);
        // The pages forbid every script (CSP); with JavaScript on, nothing on them may need it either.
        const scripts: string[] = [];
        page.on('console', (message) => scripts.push(message.text()));

        // Sign-up with double opt-in, as a website's form sends it.
        const signup = await postJson(
          `${engine.url}/v1/consent`,
          { userId, email, grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 }, method: 'double_opt_in' },
          { authorization: basicAuth(engine.writeKey) },
        );
        expect(signup.status).toBe(202);
        const profileId = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }])) as string;

        // 1. The double opt-in confirmation: a question, then the button grants.
        const confirmLink = linkIn(await waitForMail(smtp, email, 'Please confirm your subscription'), 'confirm');
        expect((await page.goto(confirmLink))?.status()).toBe(200);
        await checkPage(page, 'confirm', t.confirmTitle, mode);
        expect(await ledger(profileId)).toEqual([]); // opening the link grants nothing
        await press(page, page.getByRole('button', { name: t.confirmButton }), mode, 'Space');
        await checkPage(page, 'confirm-done', t.confirmedTitle, mode);
        expect(await page.getByRole('status').textContent()).toBe(t.confirmedNow);
        expect(await ledger(profileId)).toEqual([{ purpose: 'email_marketing', decision: 'granted', method: 'double_opt_in' }]);

        // 2. The preference page from the welcome: tick analytics, save.
        const welcome = await waitForMail(smtp, email, 'Welcome');
        const prefsLink = linkIn(welcome, 'preferences');
        expect((await page.goto(prefsLink))?.status()).toBe(200);
        await checkPage(page, 'preferences', t.prefsTitle, mode);
        const analytics = page.getByRole('checkbox', { name: catalog.get('analytics')?.description[lang] as string });
        expect(await analytics.isChecked()).toBe(false);
        expect(await page.getByRole('checkbox', { name: catalog.get('email_marketing')?.description[lang] as string }).isChecked()).toBe(true);
        await tick(page, analytics, mode);
        await press(page, page.getByRole('button', { name: t.prefsSave }), mode);
        await checkPage(page, 'preferences-saved', t.prefsTitle, mode);
        expect(await page.getByRole('status').textContent()).toBe(t.prefsSaved);
        expect(await page.getByRole('checkbox', { name: catalog.get('analytics')?.description[lang] as string }).isChecked()).toBe(true);
        expect((await ledger(profileId)).slice(1)).toEqual([{ purpose: 'analytics', decision: 'granted', method: 'preference_page' }]);

        // 3. Unsubscribe from the welcome's link: a question, then the button withdraws.
        expect((await page.goto(linkIn(welcome, 'unsubscribe')))?.status()).toBe(200);
        await checkPage(page, 'unsubscribe', t.unsubscribeTitle, mode);
        expect((await ledger(profileId)).length).toBe(2); // opening the link changes nothing
        await press(page, page.getByRole('button', { name: t.unsubscribeButton }), mode);
        await checkPage(page, 'unsubscribe-done', t.unsubscribedTitle, mode);
        expect(await page.getByRole('status').textContent()).toBe(t.unsubscribedBody);
        expect((await ledger(profileId)).slice(2)).toEqual([{ purpose: 'email_marketing', decision: 'withdrawn', method: 'email_link' }]);

        // 4. "Forget me": asked on the preference page, confirmed from the emailed link.
        expect((await page.goto(prefsLink))?.status()).toBe(200);
        await press(page, page.getByRole('button', { name: t.forgetAsk }), mode);
        await checkPage(page, 'forget-asked', t.forgetSentTitle, mode);
        expect(await page.getByRole('status').textContent()).toBe(t.forgetSent);
        const forgetLink = linkIn(await waitForMail(smtp, email, 'Confirm: erase all your data'), 'forget');
        expect((await page.goto(forgetLink))?.status()).toBe(200);
        await checkPage(page, 'forget', t.forgetConfirmTitle, mode);
        const db = engine.services.databases.db;
        const requested = () => db.selectFrom('app.erasure_requests').select(['id', 'origin']).where('requested_by', '=', 'self-service link').execute();
        const before = await requested();
        await press(page, page.getByRole('button', { name: t.forgetConfirm }), mode, 'Space');
        await checkPage(page, 'forget-done', t.forgetDoneTitle, mode);
        const reference = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/.exec((await page.getByRole('status').textContent()) ?? '')?.[0];
        const after = await requested();
        expect(after.length).toBe(before.length + 1);
        expect(after.find((r) => r.id === reference)).toEqual({ id: reference, origin: 'self_service' });

        // Every request of every page went to the engine, and none of them ran or needed a script.
        // Each page's GET and its form's POST: 10 requests, the document only each time.
        expect(requests.all.length).toBe(10);
        expect(requests.elsewhere()).toEqual([]);
        expect(scripts).toEqual([]);
      },
    );
  });
});

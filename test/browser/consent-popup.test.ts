import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { createSource } from '../../engine/ingest/sources';
import { startTestEngine, type TestEngine } from '../support/engine';
import { waitFor } from '../support/wait';
import { axeViolations, describeViolations } from './support/axe';
import { ARTIFACTS_DIR, deviceStorage, type KitPage, launchChromium, openKitPage } from './support/browser';
import { type RecordingProxy, startRecordingProxy } from './support/recorder';
import { shopPage, startTestSite, type TestSite } from './support/site';
import { ledgerRows } from './support/stores';

jest.setTimeout(90_000);

/** The element that has the focus, looking into shadow roots: its id, its action, or its text. */
const FOCUSED = `(() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  if (!el || el === document.body) return 'body';
  return el.getAttribute('data-cf-action') || el.id || el.textContent.trim();
})()`;

const DIALOG = '[data-cf-dialog] [role="dialog"]';

/**
 * The consent pop-up as people meet it: built from rules/purposes.yaml in English and Polish, an
 * accessible modal dialog (axe-core finds no violation), usable with the keyboard alone, refusing as
 * prominent as accepting. Screenshots are kept under test-artifacts/.
 */
describe('consent pop-up in Chromium: accessible, keyboard-only, from purposes.yaml', () => {
  let engine: TestEngine;
  let site: TestSite;
  let browser: Browser;
  let proxy: RecordingProxy;
  const open: KitPage[] = [];

  beforeAll(async () => {
    [engine, site, browser] = await Promise.all([startTestEngine(), startTestSite(), launchChromium()]);
    proxy = await startRecordingProxy(engine.url);
    fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  });
  afterAll(async () => {
    await Promise.all(open.map((p) => p.close()));
    await browser?.close();
    await proxy?.close();
    await site?.close();
    await engine?.stop();
  });

  async function shop(pagePath: string, data: Record<string, string>, options: { lang?: string; locale?: string } = {}) {
    const source = await createSource(engine.services.databases.db, `shop ${pagePath}`, [site.allowedOrigin]);
    let html = shopPage({ engineUrl: proxy.url, writeKey: source.writeKey, data, ...(options.lang ? { lang: options.lang } : {}) });
    if (pagePath === '/own-link') html = html.replace('<footer><p>Test shop footer</p>', '<footer><p>Test shop footer <button type="button" data-cf-privacy-settings>Cookie settings</button></p>');
    site.page(pagePath, html);
    const kit = await openKitPage(browser, options.locale ? { locale: options.locale } : {});
    open.push(kit);
    await kit.page.goto(`${site.allowedOrigin}${pagePath}`);
    return { source, kit, page: kit.page };
  }

  it('shows each purpose of the notice with its description, legal basis and retention, in English, and passes axe-core', async () => {
    const { page } = await shop('/en', { consent: 'auto', 'preferences-url': '/privacy' });
    const dialog = page.locator(DIALOG);
    await dialog.waitFor();
    expect(await dialog.getAttribute('aria-modal')).toBe('true');
    expect(await page.locator('[data-cf-dialog] #t').textContent()).toBe('Your privacy choices');
    const text = (await dialog.textContent()) ?? '';
    // The notice as purposes.yaml words it, then each of its purposes.
    expect(text).toContain('We would like to measure how our website is used');
    expect(text).toContain('Linking your visits to our website and app to your profile');
    expect(text).toContain('Grouping you with people of similar interests');
    expect(text).toContain('Legal basis: your consent (GDPR Art. 6(1)(a)).');
    expect(text).toContain('Kept for 13 months.');
    // Nothing ticked in advance.
    expect(await page.locator('[data-cf-dialog] input[role="switch"]:checked').count()).toBe(0);
    expect(await page.locator('[data-cf-dialog] input[role="switch"]').count()).toBe(2);
    expect(await page.locator('[data-cf-dialog] a').getAttribute('href')).toBe('/privacy');

    // "Reject all" exactly as prominent as "Accept all": same size, font, colours, border.
    const look = (action: string) =>
      page.locator(`[data-cf-dialog] button[data-cf-action="${action}"]`).evaluate((b) => {
        const s = (globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> }).getComputedStyle(b);
        const box = (b as { getBoundingClientRect(): { width: number; height: number } }).getBoundingClientRect();
        return { font: s.font, color: s.color, background: s.backgroundColor, border: s.border, padding: s.padding, width: Math.round(box.width), height: Math.round(box.height) };
      });
    expect(await look('reject')).toEqual(await look('accept'));

    expect(describeViolations(await axeViolations(page))).toEqual([]);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'consent-popup-en.png') });
  });

  it('speaks Polish to a Polish page, and passes axe-core there too', async () => {
    const { page } = await shop('/pl', { consent: 'auto' }, { lang: 'pl', locale: 'pl-PL' });
    const dialog = page.locator(DIALOG);
    await dialog.waitFor();
    expect(await dialog.getAttribute('lang')).toBe('pl');
    const text = (await dialog.textContent()) ?? '';
    expect(text).toContain('Twoje wybory dotyczące prywatności');
    expect(text).toContain('Łączenie Twoich wizyt w naszym serwisie');
    expect(text).toContain('Podstawa prawna: Twoja zgoda (art. 6 ust. 1 lit. a RODO).');
    expect(text).toContain('Przechowujemy przez 13 miesięcy.');
    expect(await page.locator('[data-cf-dialog] button[data-cf-action="reject"]').textContent()).toBe('Odrzuć wszystkie');
    expect(await page.locator('[data-cf-dialog] button[data-cf-action="accept"]').textContent()).toBe('Akceptuj wszystkie');
    expect(describeViolations(await axeViolations(page))).toEqual([]);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'consent-popup-pl.png') });
  });

  it('lets the page place its own "privacy settings" control instead of the floating button', async () => {
    const { page } = await shop('/own-link', {}, {});
    // The page is served before the script runs: its own control is in the markup.
    expect(await page.locator('[data-cf-privacy]').count()).toBe(0);
    await page.locator('footer button[data-cf-privacy-settings]').click();
    await page.locator(DIALOG).waitFor();
    expect(await page.locator('[data-cf-dialog] #t').textContent()).toBe('Your privacy choices');
  });

  it('works with the keyboard alone: opens from "Privacy settings", traps and restores focus, Escape closes without a choice, Enter decides', async () => {
    const { source, kit, page } = await shop('/keyboard', {});
    await page.locator('[data-cf-privacy] button').waitFor();
    const focused = async () => (await page.evaluate(FOCUSED)) as string;
    const press = async (key: string) => {
      await page.keyboard.press(key);
      return focused();
    };

    // From the top of the page, Tab reaches the "Privacy settings" button after the page's own link.
    expect(await press('Tab')).toBe('Another page');
    expect(await press('Tab')).toBe('Privacy settings');
    await press('Enter');
    await page.locator(DIALOG).waitFor();
    expect(await focused()).toBe('t');

    // Tab walks the dialog and wraps around; the page behind stays out of reach.
    const forward: string[] = [];
    for (let i = 0; i < 7; i++) forward.push(await press('Tab'));
    expect(forward).toEqual(['p-analytics', 'p-profiling', 'reject', 'accept', 'save', 'p-analytics', 'p-profiling']);
    const backward: string[] = [];
    for (let i = 0; i < 3; i++) backward.push(await press('Shift+Tab'));
    expect(backward).toEqual(['p-analytics', 'save', 'accept']);
    expect(await page.getByText('Another page').evaluate((a) => (a as { closest(s: string): { inert: boolean } }).closest('main').inert)).toBe(true);

    // Escape: closed, nothing chosen, nothing stored or sent, focus back on the button.
    expect(await press('Escape')).toBe('Privacy settings');
    expect(await page.locator('[data-cf-dialog]').count()).toBe(0);
    expect((await deviceStorage(kit)).local).toEqual({});
    expect(proxy.requests.some((r) => r.writeKey === source.writeKey && r.path === '/v1/consent')).toBe(false);

    // Enter again, then: Tab to analytics, Enter ticks it, Tab to "Save my choices", Enter.
    await press('Enter');
    await page.locator(DIALOG).waitFor();
    expect(await press('Tab')).toBe('p-analytics');
    await press('Enter');
    expect(await page.locator('[data-cf-dialog] #p-analytics').isChecked()).toBe(true);
    expect(await page.locator('[data-cf-dialog] #p-profiling').isChecked()).toBe(false);
    for (const expected of ['p-profiling', 'reject', 'accept', 'save']) expect(await press('Tab')).toBe(expected);
    expect(await press('Enter')).toBe('Privacy settings');
    expect(await page.locator('[data-cf-dialog]').count()).toBe(0);

    const rows = await waitFor(async () => {
      const r = await ledgerRows(engine.services, source.id);
      return r.length === 2 ? r : undefined;
    }, { what: 'the choice in the ledger' });
    expect(rows.map((r) => [r.purpose, r.decision, r.method]).sort()).toEqual([
      ['analytics', 'granted', 'banner'],
      ['profiling', 'withdrawn', 'banner'],
    ]);
    const stored = (await deviceStorage(kit)).local;
    expect(JSON.parse(stored.cf_consent as string)).toMatchObject({ g: ['analytics'], l: true });
    expect(stored.cf_aid).toMatch(/^[0-9a-f-]{36}$/);
  });
});

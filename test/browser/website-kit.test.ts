import type { Browser } from 'playwright-core';
import { createSource } from '../../engine/ingest/sources';
import { startTestEngine, type TestEngine } from '../support/engine';
import { waitFor } from '../support/wait';
import { deviceStorage, type KitPage, keysIn, launchChromium, openKitPage, type PageGlobals } from './support/browser';
import { type RecordedRequest, type RecordingProxy, startRecordingProxy } from './support/recorder';
import { shopPage, startTestSite, type TestSite } from './support/site';
import { eventCounts, ledgerRows, profileCount, storedEvents } from './support/stores';

jest.setTimeout(90_000);

const IDENTIFIERS = ['anonymousId', 'userId', 'previousId', 'email'];

/**
 * The website kit in a real browser (Debian's Chromium) on a page of another origin, against the
 * real engine: what it sends and stores before consent, after "accept all", after "reject all", and
 * with Global Privacy Control; and the CORS allow-list of the source.
 */
describe('website kit (cf.js) in Chromium: tracking and consent', () => {
  let engine: TestEngine;
  let site: TestSite;
  let browser: Browser;
  let proxy: RecordingProxy;
  const open: KitPage[] = [];

  beforeAll(async () => {
    [engine, site, browser] = await Promise.all([startTestEngine(), startTestSite(), launchChromium()]);
    proxy = await startRecordingProxy(engine.url);
  });
  afterAll(async () => {
    await Promise.all(open.map((p) => p.close()));
    await browser?.close();
    await proxy?.close();
    await site?.close();
    await engine?.stop();
  });

  /** A source of its own for each test, allowing the site's origin, and a page embedding the kit with its key. */
  async function shop(path: string, data: Record<string, string> = {}, options: { gpc?: boolean } = {}) {
    const source = await createSource(engine.services.databases.db, `shop ${path}`, [site.allowedOrigin]);
    site.page(path, shopPage({ engineUrl: proxy.url, writeKey: source.writeKey, data }));
    const kit = await openKitPage(browser, options);
    open.push(kit);
    const sent = () => proxy.requests.filter((r) => r.writeKey === source.writeKey);
    return { source, kit, sent, url: `${site.allowedOrigin}${path}` };
  }
  const loaded = (kit: KitPage) => kit.page.waitForFunction(() => typeof (globalThis as unknown as Partial<PageGlobals>).cf?.version === 'string');
  const flush = (kit: KitPage) => kit.page.evaluate(() => (globalThis as unknown as PageGlobals).cf.flush());
  const sentIdentifiers = (sent: () => RecordedRequest[]) => sent().flatMap((r) => [...keysIn(r.body)].filter((k) => IDENTIFIERS.includes(k)));
  const dialogButton = (kit: KitPage, action: string) => kit.page.locator(`[data-cf-dialog] button[data-cf-action="${action}"]`);

  it('with no consent sends page views and events without any identifier, stores nothing on the device, and the engine keeps only counts', async () => {
    const { source, kit, sent, url } = await shop('/no-consent');
    await kit.page.goto(url);
    await loaded(kit);
    await kit.page.evaluate(() => {
      const cf = (globalThis as unknown as PageGlobals).cf;
      cf.page('Pricing');
      cf.track('Mug Viewed', { sku: 'M-1' });
      cf.identify('user-1', { email: 'ann@example.com' });
    });
    await flush(kit);
    // The automatic page view, the named one and the event, counted; the identify kept back.
    const counts = await waitFor(async () => {
      const c = await eventCounts(engine.services, source.id);
      return c['page:'] === 1 && c['page:Pricing'] === 1 && c['track:Mug Viewed'] === 1 ? c : undefined;
    }, { what: 'the anonymous counts' });
    expect(Object.keys(counts).sort()).toEqual(['page:', 'page:Pricing', 'track:Mug Viewed']);
    // What went out is exactly what is counted: type and name, nothing else.
    const anonymous = sent().filter((r) => r.path === '/v1/anonymous').flatMap((r) => (r.body as { batch: unknown[] }).batch);
    expect(anonymous).toEqual([{ type: 'page' }, { type: 'page', name: 'Pricing' }, { type: 'track', event: 'Mug Viewed' }]);
    expect(sent().some((r) => r.path === '/v1/batch' || r.path === '/v1/identify' || r.path === '/v1/consent')).toBe(false);
    expect(sentIdentifiers(sent)).toEqual([]);
    expect(JSON.stringify(sent())).not.toContain('ann@example.com');
    expect(await deviceStorage(kit)).toEqual({ local: {}, session: {}, cookies: 0 });
    expect(await storedEvents(engine.services, source.id)).toEqual([]);
    expect(await profileCount(engine.services, source.id)).toBe(0);
  });

  it('after "accept all" keeps an anonymous id in first-party storage, sends it with every event, and the events are stored as the person\'s', async () => {
    const { source, kit, sent, url } = await shop('/accept', { consent: 'auto' });
    await kit.page.goto(url);
    await dialogButton(kit, 'accept').click();
    const ledger = await waitFor(async () => {
      const rows = await ledgerRows(engine.services, source.id);
      return rows.length === 2 ? rows : undefined;
    }, { what: 'the consent in the ledger' });
    expect(ledger.map((r) => [r.purpose, r.decision, r.method, r.notice_id, r.notice_version])).toEqual(
      expect.arrayContaining([
        ['analytics', 'granted', 'banner', 'cookie_banner', 2],
        ['profiling', 'granted', 'banner', 'cookie_banner', 2],
      ]),
    );
    const stored = await deviceStorage(kit);
    const anonymousId = stored.local.cf_aid as string;
    expect(anonymousId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Object.keys(stored.local).sort()).toEqual(['cf_aid', 'cf_consent']);
    expect(stored.cookies).toBe(0);
    const consentCall = sent().find((r) => r.path === '/v1/consent');
    expect(consentCall?.body).toMatchObject({ anonymousId, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 2 }, method: 'banner' });

    await kit.page.evaluate(() => (globalThis as unknown as PageGlobals).cf.track('Added To Cart'));
    await flush(kit);
    // A reload: the same id, no dialog again, the automatic page view carries it too.
    await kit.page.reload();
    await loaded(kit);
    await flush(kit);
    const events = await waitFor(async () => {
      const rows = await storedEvents(engine.services, source.id);
      return rows.filter((r) => r.type === 'page').length >= 1 && rows.some((r) => r.name === 'Added To Cart') ? rows : undefined;
    }, { what: 'the consented events stored' });
    expect(new Set(events.map((e) => e.profile_id)).size).toBe(1);
    expect(events.every((e) => e.profile_id !== null)).toBe(true);
    const batches = sent().filter((r) => r.path === '/v1/batch').flatMap((r) => (r.body as { batch: Array<{ anonymousId?: string }> }).batch);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    expect(batches.every((e) => e.anonymousId === anonymousId)).toBe(true);
    expect(await kit.page.locator('[data-cf-dialog]').count()).toBe(0);
  });

  it('after "reject all" sends no identifier and keeps only the choice itself on the device', async () => {
    const { source, kit, sent, url } = await shop('/reject', { consent: 'auto' });
    await kit.page.goto(url);
    await dialogButton(kit, 'reject').click();
    await kit.page.evaluate(() => (globalThis as unknown as PageGlobals).cf.track('Plate Viewed'));
    await flush(kit);
    await kit.page.reload();
    await loaded(kit);
    await flush(kit);
    await waitFor(async () => {
      const c = await eventCounts(engine.services, source.id);
      return c['page:'] === 2 && c['track:Plate Viewed'] === 1;
    }, { what: 'the anonymous counts' });
    expect(sentIdentifiers(sent)).toEqual([]);
    // Nobody is known, so there is nobody to record a refusal for: nothing goes to the ledger.
    expect(sent().some((r) => r.path === '/v1/consent')).toBe(false);
    const stored = await deviceStorage(kit);
    expect(Object.keys(stored.local)).toEqual(['cf_consent']);
    expect(JSON.parse(stored.local.cf_consent as string)).toMatchObject({ n: 'cookie_banner', v: 2, g: [], l: false });
    expect(stored.cookies).toBe(0);
    expect(await storedEvents(engine.services, source.id)).toEqual([]);
    expect(await ledgerRows(engine.services, source.id)).toEqual([]);
    expect(await kit.page.locator('[data-cf-dialog]').count()).toBe(0);
  });

  it('withdraws with one click on "Privacy settings" and then "Reject all": the ledger records it and the id is gone', async () => {
    const { source, kit, sent, url } = await shop('/withdraw', { consent: 'auto' });
    await kit.page.goto(url);
    await dialogButton(kit, 'accept').click();
    await waitFor(async () => (await ledgerRows(engine.services, source.id)).length === 2, { what: 'the grants' });
    const anonymousId = (await deviceStorage(kit)).local.cf_aid;
    await kit.page.locator('[data-cf-privacy] button').click();
    await dialogButton(kit, 'reject').click();
    const rows = await waitFor(async () => {
      const r = await ledgerRows(engine.services, source.id);
      return r.length === 4 ? r : undefined;
    }, { what: 'the withdrawals' });
    expect(rows.slice(2).map((r) => [r.purpose, r.decision])).toEqual(expect.arrayContaining([['analytics', 'withdrawn'], ['profiling', 'withdrawn']]));
    expect(sent().filter((r) => r.path === '/v1/consent').at(-1)?.body).toMatchObject({ anonymousId, grant: [], withdraw: ['analytics', 'profiling'] });
    expect(Object.keys((await deviceStorage(kit)).local)).toEqual(['cf_consent']);
  });

  it('with Global Privacy Control sends no identifier, even after "accept all" and a reload, and shows no pop-up on its own', async () => {
    const { source, kit, sent, url } = await shop('/gpc', { consent: 'auto' }, { gpc: true });
    await kit.page.goto(url);
    await loaded(kit);
    expect(await kit.page.evaluate(() => (globalThis as unknown as PageGlobals).navigator.globalPrivacyControl)).toBe(true);
    expect(await kit.page.locator('[data-cf-dialog]').count()).toBe(0);
    await kit.page.evaluate(() => (globalThis as unknown as PageGlobals).cf.consent.show());
    await dialogButton(kit, 'accept').click();
    await kit.page.reload();
    await loaded(kit);
    await kit.page.evaluate(() => {
      const cf = (globalThis as unknown as PageGlobals).cf;
      cf.identify('user-gpc');
      cf.track('Bowl Viewed');
    });
    await flush(kit);
    await waitFor(async () => {
      const c = await eventCounts(engine.services, source.id);
      return c['page:'] === 2 && c['track:Bowl Viewed'] === 1;
    }, { what: 'the anonymous counts' });
    expect(sentIdentifiers(sent)).toEqual([]);
    expect(sent().some((r) => r.path !== '/v1/anonymous' && r.method === 'POST')).toBe(false);
    const stored = await deviceStorage(kit);
    expect(stored.local.cf_aid).toBeUndefined();
    expect(stored.cookies).toBe(0);
    expect(await storedEvents(engine.services, source.id)).toEqual([]);
    expect(await profileCount(engine.services, source.id)).toBe(0);
  });

  it('works from an origin the source allows and fails from any other: the engine accepts nothing from it', async () => {
    const { source, kit, sent } = await shop('/cors');
    const readNotice = () =>
      kit.page.evaluate(
        ({ engineUrl, writeKey }) =>
          (globalThis as unknown as PageGlobals).fetch(`${engineUrl}/v1/consent/notice?writeKey=${encodeURIComponent(writeKey)}`).then(
            (r) => r.status,
            () => 'blocked',
          ),
        { engineUrl: proxy.url, writeKey: source.writeKey },
      );
    await kit.page.goto(`${site.allowedOrigin}/cors`);
    await loaded(kit);
    await flush(kit);
    expect(await readNotice()).toBe(200);
    await waitFor(async () => (await eventCounts(engine.services, source.id))['page:'] === 1, { what: 'the allowed page view counted' });

    // The same page from another origin: the script loads (it is public, and its integrity holds),
    // but the engine refuses its calls and the browser may not read the answers.
    await kit.page.goto(`${site.otherOrigin}/cors`);
    await loaded(kit);
    await flush(kit);
    await waitFor(() => sent().some((r) => r.path === '/v1/anonymous' && r.origin === site.otherOrigin && r.status === 403), { what: 'the refused page view' });
    expect(await readNotice()).toBe('blocked');
    await expect(kit.page.evaluate(() => (globalThis as unknown as PageGlobals).cf.consent.show())).rejects.toThrow();
    const fromOther = sent().filter((r) => r.origin === site.otherOrigin && r.path !== '/v1/cf.js');
    expect(fromOther.length).toBeGreaterThanOrEqual(3);
    expect(fromOther.every((r) => r.status === 403)).toBe(true);
    expect(sent().filter((r) => r.origin === site.allowedOrigin).every((r) => r.status === 200)).toBe(true);
    expect(await eventCounts(engine.services, source.id)).toEqual({ 'page:': 1 });
  });
});

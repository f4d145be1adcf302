import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Command } from 'commander';
import { parse, stringify } from 'yaml';
import { KIT_SCRIPT_FILE, kitScript } from '../../engine/http/kit/asset';
import { KIT_TEXT, retentionText } from '../../engine/http/routes/kit-texts';
import { createSource } from '../../engine/ingest/sources';
import { TRANSPARENT_GIF } from '../../engine/http/routes/pixel';
import type { CommandContext } from '../../workers/cli/commands';
import { registerKitCommands } from '../../workers/cli/kit-commands';
import { tempDir } from '../support/config';
import { postJson, startTestEngine, type TestEngine } from '../support/engine';
import { SHIPPED_RULES_DIR } from '../support/rules';
import { waitFor } from '../support/wait';
import { eventCounts, profileCount } from './support/stores';

const SITE = 'https://shop.example';

/** The shipped rules, which declare a Polish translation of the cookie banner as notice `cookie_banner.pl`. */
function rulesWithPolishBanner(): string {
  const dir = tempDir('cf-rules');
  fs.cpSync(SHIPPED_RULES_DIR, dir, { recursive: true });
  return dir;
}

/**
 * The website kit over plain HTTP: how `GET /v1/cf.js` is served (validators, gzip, CORS for SRI),
 * its published integrity hash, the consent notice endpoint and the anonymous counts.
 */
describe('website kit over HTTP: cf.js, the notice, anonymous counts', () => {
  let engine: TestEngine;
  let shop: { id: string; writeKey: string };
  beforeAll(async () => {
    engine = await startTestEngine({ RULES_DIR: rulesWithPolishBanner() });
    shop = await createSource(engine.services.databases.db, 'shop', [SITE]);
  });
  afterAll(async () => {
    await engine?.stop();
  });

  const file = fs.readFileSync(KIT_SCRIPT_FILE);

  it('serves cf.js as the file in the repository, with a strong ETag, a cache lifetime and CORS for Subresource Integrity', async () => {
    const res = await fetch(`${engine.url}/v1/cf.js`, { headers: { 'accept-encoding': 'identity', origin: 'https://anyone.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=3600');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const etag = res.headers.get('etag') as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/); // strong: no W/
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(file)).toBe(true);
    expect(`sha384-${createHash('sha384').update(body).digest('base64')}`).toBe(kitScript().integrity);

    for (const ifNoneMatch of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await fetch(`${engine.url}/v1/cf.js`, { headers: { 'accept-encoding': 'identity', 'if-none-match': ifNoneMatch } });
      expect(again.status).toBe(304);
      expect(again.headers.get('etag')).toBe(etag);
      expect((await again.arrayBuffer()).byteLength).toBe(0);
    }
    expect((await fetch(`${engine.url}/v1/cf.js`, { headers: { 'accept-encoding': 'identity', 'if-none-match': '"other"' } })).status).toBe(200);

    // gzip: its own strong ETag, the same bytes once decoded.
    const gz = await fetch(`${engine.url}/v1/cf.js`, { headers: { 'accept-encoding': 'gzip, br;q=0.5' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gz.headers.get('vary')).toBe('Accept-Encoding');
    expect(gz.headers.get('etag')).toBe(kitScript().gzipEtag);
    expect(Buffer.from(await gz.arrayBuffer()).equals(file)).toBe(true); // fetch decoded it
    const head = await fetch(`${engine.url}/v1/cf.js`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('keeps the script small: under 24 KB as written and 8 KB gzipped', () => {
    expect(file.length).toBeLessThan(24 * 1024);
    expect(zlib.gzipSync(file, { level: 9 }).length).toBeLessThan(8 * 1024);
  });

  it('`consentflow kit sri` prints the integrity hash (and with --json the sizes)', async () => {
    const printed: string[] = [];
    const context = () => ({ print: (line: string) => printed.push(line) }) as unknown as CommandContext;
    const program = new Command('consentflow').exitOverride();
    registerKitCommands(program, { context, run: (action) => async (...args) => void (await action(...args)) });
    await program.parseAsync(['kit', 'sri'], { from: 'user' });
    await program.parseAsync(['kit', 'sri', '--json'], { from: 'user' });
    expect(printed[0]).toBe(kitScript().integrity);
    expect(JSON.parse(printed[1] as string)).toEqual({ integrity: kitScript().integrity, bytes: file.length, gzipBytes: kitScript().gzip.length, etag: kitScript().etag });
  });

  it('the README publishes the integrity hash of the current cf.js (after changing the script, paste `consentflow kit sri` there)', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
    const published = [...new Set([...readme.matchAll(/sha384-[A-Za-z0-9+/=]{64}/g)].map((m) => m[0]))];
    expect({ published }).toEqual({ published: [kitScript().integrity] });
  });

  describe('GET /v1/consent/notice', () => {
    const notice = (query: string, headers: Record<string, string> = {}) =>
      fetch(`${engine.url}/v1/consent/notice?writeKey=${encodeURIComponent(shop.writeKey)}&${query}`, { headers: { origin: SITE, ...headers } });

    it('answers the notice in its latest version and its purposes with description, legal basis and retention in English', async () => {
      const res = await notice('id=cookie_banner&lang=en');
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(SITE);
      const body = (await res.json()) as { lang: string; notice: Record<string, unknown>; purposes: Array<Record<string, unknown>>; ui: Record<string, string> };
      expect(body.lang).toBe('en');
      expect(body.notice).toMatchObject({ id: 'cookie_banner', version: 2, lang: 'en', purposes: ['analytics', 'profiling'] });
      expect(body.notice.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(body.notice.versions).toEqual([
        { version: 1, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
        { version: 2, sha256: body.notice.sha256 },
      ]);
      expect(body.purposes.map((p) => p.name)).toEqual(['analytics', 'profiling']);
      expect(body.purposes[0]).toMatchObject({
        legalBasis: 'consent',
        legalBasisText: 'Legal basis: your consent (GDPR Art. 6(1)(a)).',
        retention: '13mo',
        retentionText: 'Kept for 13 months.',
        doubleOptIn: false,
        linksEvents: true,
      });
      expect(body.ui.acceptAll).toBe('Accept all');
    });

    it('speaks Polish when asked or by Accept-Language, with the Polish translation of the notice where one is declared', async () => {
      for (const res of [await notice('id=cookie_banner&lang=pl-PL'), await notice('id=cookie_banner', { 'accept-language': 'pl-PL,pl;q=0.9,en;q=0.5' })]) {
        const body = (await res.json()) as { lang: string; notice: { id: string; lang: string; text: string }; purposes: Array<{ description: string; retentionText: string }>; ui: Record<string, string> };
        expect(body.lang).toBe('pl');
        expect(body.notice).toMatchObject({ id: 'cookie_banner.pl', lang: 'pl' });
        expect(body.notice.text).toMatch(/^Chcielibyśmy mierzyć/);
        expect(body.purposes[0]?.description).toMatch(/^Łączenie Twoich wizyt/);
        expect(body.purposes[0]?.retentionText).toBe('Przechowujemy przez 13 miesięcy.');
        expect(body.ui.rejectAll).toBe('Odrzuć wszystkie');
      }
      // Without a translation, the notice itself (in English, and said so).
      const form = (await (await notice('id=newsletter_form&lang=pl')).json()) as { notice: { id: string; lang: string } };
      expect(form.notice).toMatchObject({ id: 'newsletter_form', lang: 'en' });
    });

    it('takes the first declared of several ids, and refuses unknown ids, a missing key and other origins', async () => {
      const found = (await (await notice('id=newsletter,newsletter_form')).json()) as { notice: { id: string }; purposes: Array<{ name: string; doubleOptIn: boolean }> };
      expect(found.notice.id).toBe('newsletter_form');
      expect(found.purposes).toEqual([expect.objectContaining({ name: 'email_marketing', doubleOptIn: true, linksEvents: false })]);
      const unknown = await notice('id=nope');
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe('id: no notice "nope" is declared under notices in rules/purposes.yaml');
      expect((await notice('id=bad%20id')).status).toBe(400);
      expect((await fetch(`${engine.url}/v1/consent/notice?id=cookie_banner`)).status).toBe(401);
      const evil = await notice('id=cookie_banner', { origin: 'https://evil.example' });
      expect(evil.status).toBe(403);
      expect(evil.headers.get('access-control-allow-origin')).toBeNull();
      // Without an id: every purpose, no notice.
      const all = (await (await notice('lang=en')).json()) as { notice: unknown; purposes: Array<{ name: string }> };
      expect(all.notice).toBeNull();
      expect(all.purposes.map((p) => p.name)).toEqual(['email_marketing', 'profiling', 'analytics']);
    });

    it('has every word of the pop-up in every language, and Polish numbers agree with their nouns', () => {
      expect(Object.keys(KIT_TEXT.pl).sort()).toEqual(Object.keys(KIT_TEXT.en).sort());
      expect(['1mo', '2y', '5y', '12mo', '22mo', '1w', '3w', '1d', '30d'].map((r) => retentionText('pl', r))).toEqual([
        'Przechowujemy przez 1 miesiąc.',
        'Przechowujemy przez 2 lata.',
        'Przechowujemy przez 5 lat.',
        'Przechowujemy przez 12 miesięcy.',
        'Przechowujemy przez 22 miesiące.',
        'Przechowujemy przez 1 tydzień.',
        'Przechowujemy przez 3 tygodnie.',
        'Przechowujemy przez 1 dzień.',
        'Przechowujemy przez 30 dni.',
      ]);
      expect(retentionText('en', '1y')).toBe('Kept for 1 year.');
    });
  });

  describe('anonymous counts: POST /v1/anonymous and GET /v1/anonymous.gif', () => {
    it('counts events that carry no identifier, per day, source, type and name, and makes no profile', async () => {
      const res = await fetch(`${engine.url}/v1/anonymous`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', origin: SITE },
        body: JSON.stringify({ writeKey: shop.writeKey, batch: [{ type: 'page' }, { type: 'page', name: 'Home' }, { type: 'page', name: 'Home' }, { type: 'track', event: 'Clicked' }] }),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(SITE);
      const counts = await eventCounts(engine.services, shop.id);
      expect(counts).toEqual({ 'page:': 1, 'page:Home': 2, 'track:Clicked': 1 });
      expect(await profileCount(engine.services, shop.id)).toBe(0);
    });

    it('refuses anything that could identify someone, bad names, unknown keys and other origins, and counts nothing then', async () => {
      const before = await eventCounts(engine.services, shop.id);
      const send = (body: unknown, origin = SITE) => postJson(`${engine.url}/v1/anonymous`, body, { origin });
      const refused = async (body: unknown, status: number, message?: RegExp) => {
        const res = await send(body);
        expect(res.status).toBe(status);
        if (message) expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
      };
      await refused({ writeKey: shop.writeKey, batch: [{ type: 'page', anonymousId: 'a-1' }] }, 400, /^batch\.0: anonymousId: not taken here; .*no identifier, property or context$/);
      await refused({ writeKey: shop.writeKey, batch: [{ type: 'track', event: 'X', properties: { email: 'a@b.pl' } }] }, 400);
      await refused({ writeKey: shop.writeKey, userId: 'u-1', batch: [{ type: 'page' }] }, 400, /userId/);
      await refused({ writeKey: shop.writeKey, batch: [{ type: 'identify' }] }, 400);
      await refused({ writeKey: shop.writeKey, batch: [{ type: 'page', name: 'a\u0000b' }] }, 400, /control characters/);
      await refused({ writeKey: shop.writeKey, batch: [] }, 400);
      await refused({ writeKey: 'wk_unknownunknownunknownunknown00', batch: [{ type: 'page' }] }, 401);
      expect((await send({ writeKey: shop.writeKey, batch: [{ type: 'page' }] }, 'https://evil.example')).status).toBe(403);
      expect(await eventCounts(engine.services, shop.id)).toEqual(before);
    });

    it('the <noscript> pixel answers the GIF whatever happens and counts a page view without anyone in it', async () => {
      const gif = async (query: string) => {
        const res = await fetch(`${engine.url}/v1/anonymous.gif?${query}`);
        expect(res.headers.get('content-type')).toBe('image/gif');
        expect(Buffer.from(await res.arrayBuffer()).equals(TRANSPARENT_GIF)).toBe(true);
        return res.status;
      };
      const before = await eventCounts(engine.services, shop.id);
      expect(await gif(`wk=${shop.writeKey}&n=No%20script`)).toBe(200);
      expect(await gif(`wk=${shop.writeKey}&t=track&n=Printed`)).toBe(200);
      for (const bad of ['n=x', 'wk=wk_nope&n=x', `wk=${shop.writeKey}&t=identify`, `wk=${shop.writeKey}&t=constructor`, `wk=${shop.writeKey}&t=track`, `wk=${shop.writeKey}&n=%00`]) {
        expect(await gif(bad)).toBe(200);
      }
      await waitFor(async () => {
        const counts = await eventCounts(engine.services, shop.id);
        return counts['page:No script'] === 1 && counts['track:Printed'] === 1 ? counts : undefined;
      }, { what: 'the pixel counts' });
      const after = await eventCounts(engine.services, shop.id);
      expect(Object.keys(after).length).toBe(Object.keys(before).length + 2);
    });
  });
});

import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { sql } from 'kysely';
import { confirmationLink, forgetLink, preferenceLink, unsubscribeLink } from '../../engine/consent/links';
import { findProfileId } from '../../engine/identity/lookup';
import { PAGE_HEADERS } from '../../engine/http/pages/respond';
import { HSTS, installSecurityHeaders } from '../../engine/http/security-headers';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForReceipts } from '../support/engine';
import { waitFor } from '../support/wait';

/**
 * The public pages (preferences /p/, unsubscribe /u/, forget /f/, the double opt-in confirmation)
 * against what a hostile visitor or website can send (issue 8): data submitted on public routes is
 * never rendered unescaped (the Mautic CVE-2022-25772 class), every page carries the security
 * headers, a GET changes nothing (ASVS 5.0 V3.5.3), and a form posted from another site is refused
 * (V3.5.1) while the RFC 8058 one-click POST, which comes with no Origin, still works.
 */

const PUBLIC_URL = 'https://prefs.example';
const form = { 'content-type': 'application/x-www-form-urlencoded' };
const crossSite = { ...form, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };
const sameOrigin = { ...form, origin: PUBLIC_URL, 'sec-fetch-site': 'same-origin' };

const PAYLOADS = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  "'><svg onload=alert(1)>",
  '</title><script>alert(2)</script>',
  '<a href="javascript:alert(3)">x</a>',
];
const [SCRIPT, IMG, SVG, TITLE, LINK] = PAYLOADS as [string, string, string, string, string];

describe('public pages: escaping, security headers, no change on GET, no cross-site POST', () => {
  let engine: TestEngine;
  const userId = `${SCRIPT}${IMG}`.slice(0, 200);
  const email = 'hostile.visitor@example.com';
  let profileId: string;
  let links: { prefs: string; unsub: string; forget: string; confirm: string };

  const db = () => engine.services.databases.db;
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });
  const local = (url: string) => url.replace(PUBLIC_URL, engine.url);
  const count = async (table: 'app.consent_ledger' | 'app.suppressions' | 'app.erasure_requests') =>
    Number((await sql<{ n: string }>`select count(*)::text as n from ${sql.table(table)}`.execute(db())).rows[0]?.n);
  const counts = async () => ({
    ledger: await count('app.consent_ledger'),
    suppressions: await count('app.suppressions'),
    erasures: await count('app.erasure_requests'),
    confirmed: Number((await sql<{ n: string }>`select count(*)::text as n from app.consent_confirmations where confirmed_at is not null`.execute(db())).rows[0]?.n),
  });
  const ledgerOf = (purpose: string) =>
    db().selectFrom('app.consent_ledger').select(['decision', 'method']).where('profile_id', '=', profileId).where('purpose', '=', purpose).orderBy('id').execute();

  beforeAll(async () => {
    engine = await startTestEngine({ PUBLIC_URL }, ['events']);
    // Hostile values through every public route that takes free text: consent (ids, the form and
    // page it came from, the message id), identify (traits, names), a page view (title, URL).
    const consent = await postJson(
      `${engine.url}/v1/consent`,
      { userId, email, messageId: TITLE, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner', source: { form: IMG, url: `https://shop.example/?q=${encodeURIComponent(SCRIPT)}` } },
      auth(),
    );
    expect(consent.status).toBe(200);
    const optIn = await postJson(
      `${engine.url}/v1/consent`,
      { userId, email, grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 }, method: 'double_opt_in', source: { form: SVG } },
      auth(),
    );
    expect(optIn.status).toBe(202);
    const identify = await postJson(
      `${engine.url}/v1/identify`,
      { userId, anonymousId: LINK, messageId: 'hostile-identify', traits: { email, name: SCRIPT, firstName: IMG, lastName: SVG, plan: TITLE, company: LINK } },
      auth(),
    );
    expect(identify.status).toBe(200);
    const page = await postJson(`${engine.url}/v1/page`, { userId, name: SCRIPT, messageId: 'hostile-page', properties: { title: IMG, url: `https://shop.example/${encodeURIComponent(SVG)}` } }, auth());
    expect(page.status).toBe(200);
    await waitForReceipts(engine.services, ['hostile-identify', 'hostile-page']);
    profileId = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }])) as string;
    expect(profileId).toBeDefined();
    // The payloads did reach storage: a page that rendered a trait unescaped would show them.
    const stored = await db().selectFrom('app.profiles').select('traits').where('id', '=', profileId).executeTakeFirstOrThrow();
    expect(stored.traits).toMatchObject({ plan: { v: TITLE }, company: { v: LINK } });
    const confirmation = await db().selectFrom('app.consent_confirmations').select(['id', 'expires_at']).where('profile_id', '=', profileId).executeTakeFirstOrThrow();
    const key = engine.services.keys.linkSigning;
    links = {
      prefs: local(preferenceLink(PUBLIC_URL, key, profileId)),
      // A send for the unsubscribe link: the welcome the confirmation schedules (see below); until
      // then a token of the right kind for a send that does not exist (a 410 on POST).
      unsub: local(unsubscribeLink(PUBLIC_URL, key, '00000000-0000-4000-8000-000000000000')),
      forget: local(forgetLink(PUBLIC_URL, key, profileId, new Date(Date.now() + 86_400_000))),
      confirm: local(confirmationLink(PUBLIC_URL, key, confirmation.id, confirmation.expires_at)),
    };
  });
  afterAll(async () => {
    await engine.stop();
  });

  /** The page's HTML holds none of the payloads as markup: each one, if at all, only escaped. */
  function expectNoHostileMarkup(html: string): void {
    for (const payload of PAYLOADS) expect(html).not.toContain(payload);
    expect(html).not.toMatch(/<script|<img|<svg|onerror=|onload=|javascript:/i);
    // The only tags are the layout's own.
    const tags = new Set([...html.matchAll(/<\/?([a-z0-9]+)/gi)].map((m) => (m[1] as string).toLowerCase()));
    for (const tag of tags) expect(['html', 'head', 'meta', 'title', 'style', 'body', 'main', 'h1', 'h2', 'p', 'form', 'input', 'button', 'fieldset', 'legend', 'label', 'section', 'strong', 'a']).toContain(tag);
  }

  function expectPageHeaders(res: Response): void {
    for (const [name, value] of Object.entries(PAGE_HEADERS)) expect([name, res.headers.get(name)]).toEqual([name, value]);
  }

  it('every page, its GET and its error pages, renders public data only escaped and carries the security headers', async () => {
    const hostileToken = encodeURIComponent(`${SCRIPT}${IMG}`);
    const pages: Array<[string, number]> = [
      [links.prefs, 200],
      [links.unsub, 200],
      [links.forget, 200],
      [links.confirm, 200],
      [`${engine.url}/p/${hostileToken}`, 400],
      [`${engine.url}/u/${hostileToken}`, 400],
      [`${engine.url}/f/${hostileToken}`, 400],
      [`${engine.url}/v1/consent/confirm?token=${hostileToken}`, 400],
      [`${engine.url}/c/${hostileToken}`, 400],
    ];
    for (const [url, status] of pages) {
      const res = await fetch(url, { headers: { 'accept-language': 'pl, en;q=0.5' } });
      expect([url, res.status]).toEqual([url, status]);
      expectPageHeaders(res);
      expectNoHostileMarkup(await res.text());
    }
  });

  it('a GET of each page changes nothing: no ledger row, suppression, erasure request or confirmation', async () => {
    const before = await counts();
    for (const url of [links.prefs, links.unsub, links.forget, links.confirm, `${links.prefs}/forget`]) {
      const res = await fetch(url);
      expect(res.status).toBeLessThan(500);
    }
    expect(await counts()).toEqual(before);
  });

  it('a form posted from another site is refused with 403 and changes nothing; the same form from the site itself works', async () => {
    const before = await counts();
    const untickProfiling = new URLSearchParams([['shown', 'analytics'], ['shown', 'profiling'], ['purpose', 'analytics']]).toString();
    const refusals = [
      fetch(links.prefs, { method: 'POST', headers: crossSite, body: untickProfiling }),
      fetch(links.prefs, { method: 'POST', headers: { ...form, origin: 'https://evil.example' }, body: untickProfiling }),
      fetch(links.prefs, { method: 'POST', headers: { ...form, 'sec-fetch-site': 'cross-site' }, body: untickProfiling }),
      fetch(links.prefs, { method: 'POST', headers: { ...form, origin: 'null' }, body: untickProfiling }),
      fetch(links.prefs, { method: 'POST', headers: { ...form, origin: 'http://prefs.example' }, body: untickProfiling }),
      // A sibling subdomain's page (same site, another origin), even with an Origin the check would accept.
      fetch(links.prefs, { method: 'POST', headers: { ...form, origin: PUBLIC_URL, 'sec-fetch-site': 'same-site' }, body: untickProfiling }),
      fetch(`${links.prefs}/forget`, { method: 'POST', headers: crossSite, body: '' }),
      fetch(links.forget, { method: 'POST', headers: crossSite, body: '' }),
      fetch(links.unsub, { method: 'POST', headers: crossSite, body: 'List-Unsubscribe=One-Click' }),
    ];
    for (const res of await Promise.all(refusals)) {
      expect(res.status).toBe(403);
      expectPageHeaders(res);
      expect(await res.text()).toContain('Nothing was changed');
    }
    expect(await counts()).toEqual(before);
    expect(await ledgerOf('profiling')).toEqual([{ decision: 'granted', method: 'banner' }]);

    // What Chromium sends from our own page: Fetch Metadata says same-origin; Origin may be null.
    const same = await fetch(links.prefs, { method: 'POST', headers: { ...sameOrigin, origin: 'null' }, body: untickProfiling });
    expect(same.status).toBe(200);
    expectNoHostileMarkup(await same.text());
    expect(await ledgerOf('profiling')).toEqual([
      { decision: 'granted', method: 'banner' },
      { decision: 'withdrawn', method: 'preference_page' },
    ]);
  });

  it('the RFC 8058 one-click unsubscribe POST, which comes without Origin, works; a cross-site one does not', async () => {
    // A cross-site post of the double opt-in form subscribes nobody (the engine's own server, with its hooks).
    const confirmBody = new URLSearchParams({ token: new URL(links.confirm).searchParams.get('token') as string }).toString();
    const forged = await fetch(links.confirm.split('?')[0] as string, { method: 'POST', headers: crossSite, body: confirmBody });
    expect(forged.status).toBe(403);
    expect(forged.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await ledgerOf('email_marketing')).toEqual([]);
    const api = await postJson(`${engine.url}/v1/identify`, { userId: 'headers-check' }, { authorization: basicAuth(engine.writeKey) });
    expect(api.headers.get('x-content-type-options')).toBe('nosniff');
    // The person confirms the double opt-in (the page's own form, same origin); the welcome is scheduled.
    const confirmed = await fetch(links.confirm.split('?')[0] as string, { method: 'POST', headers: sameOrigin, body: new URLSearchParams({ token: new URL(links.confirm).searchParams.get('token') as string }).toString() });
    expect(confirmed.status).toBe(200);
    expectNoHostileMarkup(await confirmed.text());
    const send = await waitFor(
      () => db().selectFrom('app.scheduled_sends').select('id').where('profile_id', '=', profileId).executeTakeFirst(),
      { what: 'the welcome scheduled' },
    );
    const unsub = local(unsubscribeLink(PUBLIC_URL, engine.services.keys.linkSigning, send.id));
    expect(await ledgerOf('email_marketing')).toEqual([{ decision: 'granted', method: 'double_opt_in' }]);

    const refused = await fetch(unsub, { method: 'POST', headers: crossSite, body: 'List-Unsubscribe=One-Click' });
    expect(refused.status).toBe(403);
    expect(await ledgerOf('email_marketing')).toEqual([{ decision: 'granted', method: 'double_opt_in' }]);

    // A mail provider's server: no Origin, no Sec-Fetch-Site, the RFC 8058 body.
    const oneClick = await fetch(unsub, { method: 'POST', headers: form, body: 'List-Unsubscribe=One-Click' });
    expect(oneClick.status).toBe(200);
    expectPageHeaders(oneClick);
    expect(await ledgerOf('email_marketing')).toEqual([
      { decision: 'granted', method: 'double_opt_in' },
      { decision: 'withdrawn', method: 'email_link' },
    ]);
  });
});

describe('installSecurityHeaders: nosniff on every response, HSTS only when PUBLIC_URL is https', () => {
  async function serve(publicUrl: string): Promise<{ url: string; close: () => Promise<void> }> {
    const app = Fastify();
    installSecurityHeaders(app, { http: { publicUrl } } as Parameters<typeof installSecurityHeaders>[1]);
    await app.register(async (scope) => {
      scope.get('/json', async () => ({ echo: '<script>alert(1)</script>' }));
      scope.post('/json', async (_request, reply) => reply.code(400).send({ error: { code: 'VALIDATION_FAILED', message: 'x' } }));
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, close: () => app.close() };
  }

  it('over https: every JSON answer, its errors and 404s too, has nosniff and Strict-Transport-Security', async () => {
    const server = await serve('https://prefs.example');
    try {
      for (const res of [await fetch(`${server.url}/json`), await postJson(`${server.url}/json`, {}), await fetch(`${server.url}/nowhere`)]) {
        expect(res.headers.get('x-content-type-options')).toBe('nosniff');
        expect(res.headers.get('strict-transport-security')).toBe(HSTS);
      }
    } finally {
      await server.close();
    }
  });

  it('over http: nosniff, and no Strict-Transport-Security', async () => {
    const server = await serve('http://localhost:8080');
    try {
      const res = await fetch(`${server.url}/json`);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('strict-transport-security')).toBeNull();
    } finally {
      await server.close();
    }
  });
});

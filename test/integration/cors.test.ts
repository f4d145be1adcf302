import { sql } from 'kysely';
import { createSource } from '../../engine/ingest/sources';
import { runCli } from '../support/cli';
import { testKeysEnv } from '../support/config';
import { basicAuth, countEvents, postJson, startTestEngine, type TestEngine, waitForEvents } from '../support/engine';
import { rulesLinkingByDefault } from '../support/rules';
import { waitFor } from '../support/wait';

const SHOP = 'https://shop.example';
const EVIL = 'https://evil.example';

interface ErrorBody {
  error: { code: string; message: string };
}

/** CORS allow-list per source (OWASP ASVS 5.0 V3.4.2), on the real API. */
describe('CORS: browser calls only from the origins a source lists', () => {
  let engine: TestEngine;
  let shop: { id: string; writeKey: string };
  let server: { id: string; writeKey: string };
  const keys = testKeysEnv();
  beforeAll(async () => {
    engine = await startTestEngine({ ...keys, RULES_DIR: rulesLinkingByDefault() });
    const db = engine.services.databases.db;
    shop = await createSource(db, 'shop', [SHOP, 'http://localhost:3000']);
    // The engine's own source lists no origin: server SDKs and pixels only.
    server = { id: engine.sourceId, writeKey: engine.writeKey };
  });
  afterAll(async () => {
    await engine.stop();
  });

  const db = () => engine.services.databases.db;
  const track = (writeKey: string, messageId: string, headers: Record<string, string> = {}) =>
    postJson(`${engine.url}/v1/track`, { event: 'Viewed', anonymousId: 'cors-visitor', messageId }, { authorization: basicAuth(writeKey), ...headers });
  const ledgerCount = async () => Number((await sql<{ n: string }>`select count(*)::text as n from app.consent_ledger`.execute(db())).rows[0]?.n);
  const cli = (args: string[]) => runCli(args, { ...keys, NODE_ENV: 'test', DATABASE_URL: engine.database.url, LOG_LEVEL: 'silent' });

  it('answers a listed origin with its own Access-Control-Allow-Origin and Vary: Origin', async () => {
    for (const origin of [SHOP, 'http://localhost:3000']) {
      const res = await track(shop.writeKey, `allowed-${origin}`, { origin });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(origin);
      expect(res.headers.get('vary')).toMatch(/Origin/);
    }
    // analytics.js: text/plain, the write key in the body.
    const browser = await fetch(`${engine.url}/v1/b`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: SHOP },
      body: JSON.stringify({ batch: [{ type: 'page', name: 'Home', anonymousId: 'cors-visitor', messageId: 'allowed-batch' }], writeKey: shop.writeKey }),
    });
    expect(browser.status).toBe(200);
    expect(browser.headers.get('access-control-allow-origin')).toBe(SHOP);
    await waitForEvents(engine.services, 3, sql`message_id like 'allowed-%'`);
  });

  it('refuses an origin the source does not list with 403 naming the fix, no CORS header, nothing enqueued', async () => {
    const refused = await track(shop.writeKey, 'refused-1', { origin: EVIL });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const body = (await refused.json()) as ErrorBody;
    expect(body.error.code).toBe('FORBIDDEN');
    expect(body.error.message).toBe(
      `browser calls from origin '${EVIL}' are not allowed for this write key; allow it with \`consentflow sources origins ${shop.id} --add ${EVIL}\``,
    );
    // Another scheme, another port, a subdomain, a trailing slash: not the listed origin.
    for (const origin of ['http://shop.example', 'https://shop.example:8443', 'https://www.shop.example', `${SHOP}/`, 'null']) {
      expect((await track(shop.writeKey, `refused-${origin}`, { origin })).status).toBe(403);
    }
    const batch = await postJson(`${engine.url}/v1/batch`, { batch: [{ type: 'track', event: 'X', anonymousId: 'cors-visitor', messageId: 'refused-batch' }] }, {
      authorization: basicAuth(shop.writeKey),
      origin: EVIL,
    });
    expect(batch.status).toBe(403);
    // A source with no origins refuses every browser.
    expect((await track(server.writeKey, 'refused-server', { origin: SHOP })).status).toBe(403);

    // The worker takes jobs in order: once a later event is stored, a refused one would have been too.
    expect((await track(shop.writeKey, 'after-refused', { origin: SHOP })).status).toBe(200);
    await waitForEvents(engine.services, 1, sql`message_id = 'after-refused'`);
    expect(await countEvents(engine.services, sql`message_id like 'refused-%'`)).toBe(0);
  });

  it('leaves calls without Origin (server SDKs) as they were, and pixels need no CORS', async () => {
    const res = await track(server.writeKey, 'server-1');
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pixel = await fetch(`${engine.url}/t.gif?wk=${server.writeKey}&t=track&e=Opened&aid=cors-visitor&mid=pixel-with-origin`, { headers: { origin: EVIL } });
    expect(pixel.status).toBe(200);
    expect((await pixel.arrayBuffer()).byteLength).toBe(43);
    await waitForEvents(engine.services, 2, sql`message_id in ('server-1', 'pixel-with-origin')`);
  });

  it('applies the same allow-list to POST /v1/consent', async () => {
    const choice = { anonymousId: 'cors-visitor', grant: ['analytics'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner' };
    const before = await ledgerCount();
    const refused = await postJson(`${engine.url}/v1/consent`, { ...choice, messageId: 'consent-refused' }, { authorization: basicAuth(shop.writeKey), origin: EVIL });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(await ledgerCount()).toBe(before);
    const allowed = await postJson(`${engine.url}/v1/consent`, { ...choice, messageId: 'consent-allowed' }, { authorization: basicAuth(shop.writeKey), origin: SHOP });
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(await ledgerCount()).toBe(before + 1);
  });

  it('answers a preflight only for an origin some active source lists', async () => {
    const preflight = (origin: string) =>
      fetch(`${engine.url}/v1/track`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
      });
    const ok = await preflight(SHOP);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    expect(ok.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(ok.headers.get('vary')).toMatch(/Origin/);
    const refused = await preflight(EVIL);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await refused.json()) as ErrorBody).error.message).toBe(
      `no source allows browser calls from origin '${EVIL}'; allow it with \`consentflow sources origins SOURCE_ID --add ${EVIL}\``,
    );
    // Not a preflight (no Origin): no CORS headers.
    const plain = await fetch(`${engine.url}/v1/track`, { method: 'OPTIONS' });
    expect(plain.status).toBe(204);
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('`sources add --origin` and `sources origins --add/--remove` set the list, normalized and validated; the API follows', async () => {
    const created = cli(['sources', 'add', 'app', '--origin', 'https://App.Example:443/', '--origin', 'http://localhost:8080', '--json']);
    expect(created.stderr).toBe('');
    const app = JSON.parse(created.stdout) as { id: string; writeKey: string; allowedOrigins: string[] };
    expect(app.allowedOrigins).toEqual(['https://app.example', 'http://localhost:8080']);
    expect((await track(app.writeKey, 'cli-1', { origin: 'https://app.example' })).status).toBe(200);

    for (const bad of ['https://app.example/path', 'app.example', 'https://*.example.com', 'null', 'https://user@app.example', 'https://app.example?x=1']) {
      const result = cli(['sources', 'add', 'bad', '--origin', bad]);
      expect(result.status).toBe(1);
      expect(result.stderr).toBe(
        `consentflow: --origin: '${bad}': expected an origin scheme://host[:port] without a path, such as https://www.example.com, or * for any origin\n`,
      );
    }

    const changed = cli(['sources', 'origins', app.id, '--add', 'https://new.example', '--remove', 'https://app.example']);
    expect(changed.stderr).toBe('');
    expect(changed.stdout).toBe(`source ${app.id}: browser calls allowed from http://localhost:8080, https://new.example\nthe running API applies the change within 5 s\n`);
    // Within the source cache's time (5 s), without a restart.
    await waitFor(async () => (await track(app.writeKey, 'cli-probe-new', { origin: 'https://new.example' })).status === 200, {
      what: 'the added origin allowed',
      timeoutMs: 10_000,
    });
    expect((await track(app.writeKey, 'cli-removed', { origin: 'https://app.example' })).status).toBe(403);

    const shown = JSON.parse(cli(['sources', 'origins', app.id, '--json']).stdout) as { allowedOrigins: string[] };
    expect(shown.allowedOrigins).toEqual(['http://localhost:8080', 'https://new.example']);
    expect(cli(['sources', 'origins', app.id, '--add', 'ftp:/x']).stderr).toContain("consentflow: --add: 'ftp:/x': expected an origin scheme://host[:port]");
    expect(cli(['sources', 'origins', '00000000-0000-4000-8000-000000000000', '--add', '*']).stderr).toBe(
      'consentflow: no active source has the id 00000000-0000-4000-8000-000000000000\n',
    );

    // `*`: any origin, each answered with its own origin.
    expect(cli(['sources', 'origins', app.id, '--add', '*']).stdout).toContain('any browser origin (*)');
    await waitFor(async () => (await track(app.writeKey, 'cli-probe-any', { origin: 'https://anything.example' })).status === 200, {
      what: 'any origin allowed',
      timeoutMs: 10_000,
    });
    const any = await track(app.writeKey, 'cli-any', { origin: 'https://other.example' });
    expect(any.headers.get('access-control-allow-origin')).toBe('https://other.example');
    expect(cli(['sources', 'list']).stdout).toContain(`${app.id}`);
    // Thirteen CLI processes, each a Node start and a migration check: about 13 s alone, more than
    // the default 30 s when the whole suite shares the two cores (it timed out once so).
  }, 120_000);
});

import { Analytics } from '@segment/analytics-node';
import { sql } from 'kysely';
import { Redis } from 'ioredis';
import { describeSubject } from '../../engine/identity/subject';
import { changeAllowedOrigins } from '../../engine/ingest/sources';
import { TEST_REDIS_URL } from '../support/env';
import { basicAuth, countEvents, dumpAppSchema, postJson, startTestEngine, type TestEngine, waitForEvents } from '../support/engine';
import { waitFor } from '../support/wait';
import { rulesLinkingByDefault } from '../support/rules';

const EMAIL = 'jan.kowalski@example.com';
const NAME = 'Jan Kowalski';
const PHONE = '+48 601 234 567';

/**
 * Every key of this engine (its queue prefix) and every value in it, as text. Other test files
 * share the Redis server and plant PII on purpose (the dashboard's scrubbing test), so only this
 * engine's keys are this test's business.
 */
async function dumpRedis(url: string, prefix: string): Promise<string> {
  const redis = new Redis(url);
  const parts: string[] = [];
  try {
    for (const key of await redis.keys(`${prefix}*`)) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === 'string') value = await redis.getBuffer(key).then((b) => b?.toString('latin1'));
      else if (type === 'hash') value = await redis.hgetall(key);
      else if (type === 'list') value = await redis.lrange(key, 0, -1);
      else if (type === 'set') value = await redis.smembers(key);
      else if (type === 'zset') value = await redis.zrange(key, '0', '-1');
      else if (type === 'stream') value = await redis.xrange(key, '-', '+');
      parts.push(key, JSON.stringify(value));
    }
  } finally {
    redis.disconnect();
  }
  return parts.join('\n');
}

describe('ingestion: Segment-compatible API, identity, vault', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ HTTP_TRUST_PROXY: 'true', RULES_DIR: rulesLinkingByDefault() });
    // The browser test below calls from this origin (a CORS allow-list per source, cors.test.ts).
    await changeAllowedOrigins(engine.services.databases.db, engine.sourceId, { add: ['https://shop.example'], remove: [] });
  });
  afterAll(async () => {
    await engine.stop();
  });

  const db = () => engine.services.databases.db;
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });
  const profilesOf = async (where: ReturnType<typeof sql>) =>
    (await sql<{ profile_id: string }>`select distinct profile_id from app.events where ${where}`.execute(db())).rows.map((r) => r.profile_id);

  it("accepts events from Segment's own analytics-node client and lands identify and track on one profile", async () => {
    const analytics = new Analytics({ writeKey: engine.writeKey, host: engine.url, flushInterval: 10, maxRetries: 1 });
    analytics.identify({ userId: 'segment-user-1', traits: { email: 'ola@example.com', plan: 'pro' } });
    analytics.track({ userId: 'segment-user-1', event: 'Order Completed', properties: { order_id: 'A-1', total: 99.5, card: '4111 1111 1111 1111' } });
    await analytics.closeAndFlush({ timeout: 10_000 });
    await waitForEvents(engine.services, 2, sql`type in ('identify', 'track')`);
    const rows = (await sql<{ type: string; profile_id: string; properties: Record<string, unknown> }>`
      select type, profile_id, properties from app.events where type in ('identify', 'track') order by type`.execute(db())).rows;
    expect(rows.map((r) => r.type)).toEqual(['identify', 'track']);
    expect(rows[0]?.profile_id).toBe(rows[1]?.profile_id);
    // Only the allowed properties of "Order Completed" are kept (rules/properties.yaml).
    expect(rows[1]?.properties).toEqual({ order_id: 'A-1', total: 99.5 });
    const subject = await describeSubject(engine.services.databases, engine.services.keys, { email: 'OLA@example.com' });
    expect(subject?.profileId).toBe(rows[0]?.profile_id);
    expect(subject?.traits.plan).toMatchObject({ v: 'pro', src: engine.sourceId });
    expect(subject?.fields).toEqual([expect.objectContaining({ field: 'email', value: 'ola@example.com', sourceId: engine.sourceId })]);
  });

  it('keeps every email, name, phone and full IP out of the app schema and out of Redis', async () => {
    const headers = { ...auth(), 'x-forwarded-for': '203.0.113.77' };
    const anonymousId = 'anon-pii-test';
    for (const path of ['/pricing', '/signup']) {
      const res = await postJson(`${engine.url}/v1/page`, {
        anonymousId,
        name: 'Sign up',
        properties: { url: `https://shop.example/${path}?email=${encodeURIComponent(EMAIL)}&utm_source=news`, path, title: `Welcome ${EMAIL}` },
        context: {
          page: { url: `https://shop.example${path}?email=${EMAIL}`, referrer: `https://mail.example/?to=${EMAIL}`, title: 'x' },
          userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
          // A server-side SDK forwards its visitor's address here; only the /24 may be stored.
          ...(path === '/signup' ? { ip: '198.51.100.23' } : {}),
        },
      }, headers);
      expect(res.status).toBe(200);
    }
    const identify = await postJson(
      `${engine.url}/v1/identify`,
      { anonymousId, userId: 'jan-1', traits: { email: EMAIL, name: NAME, firstName: 'Jan', lastName: 'Kowalski', phone: PHONE, plan: 'free' } },
      headers,
    );
    expect(identify.status).toBe(200);
    await waitForEvents(engine.services, 3, sql`context->>'ipPrefix' in ('203.0.113.0', '198.51.100.0')`);

    const app = await dumpAppSchema(db());
    const redis = await dumpRedis(TEST_REDIS_URL, engine.services.config.queuePrefix);
    expect(redis).toContain(engine.services.config.queuePrefix);
    for (const [where, text] of [['app schema', app], ['redis', redis]] as const) {
      for (const needle of [EMAIL, encodeURIComponent(EMAIL), 'jan.kowalski', 'Kowalski', '601 234 567', '48601234567', '203.0.113.77', '198.51.100.23']) {
        expect({ where, found: text.includes(needle) ? needle : null }).toEqual({ where, found: null });
      }
    }
    expect(app).toContain('203.0.113.0');
    expect(app).toContain('utm_source=news');
    // The user agent is kept as families only.
    const context = (await sql<{ context: Record<string, unknown> }>`
      select context from app.events where type = 'page' and context->>'ipPrefix' = '203.0.113.0' limit 1`.execute(db())).rows[0]?.context;
    expect(context?.userAgent).toEqual({ browser: 'Chrome', os: 'Windows', deviceType: 'desktop' });
    // …and everything identifying is in the vault, encrypted, readable with the keys.
    const subject = await describeSubject(engine.services.databases, engine.services.keys, { email: EMAIL });
    expect(Object.fromEntries((subject?.fields ?? []).map((f) => [f.field, f.value]))).toEqual({
      email: EMAIL,
      name: NAME,
      firstName: 'Jan',
      lastName: 'Kowalski',
      phone: PHONE,
    });
    expect(subject?.events).toEqual([
      { type: 'identify', count: 1 },
      { type: 'page', count: 2 },
    ]);
    expect(app).toContain('198.51.100.0');
    const logs = engine.logText().toLowerCase();
    for (const needle of ['kowalski', '601 234 567', '601234567', '203.0.113.77']) expect(logs).not.toContain(needle);
    // This engine believes any X-Forwarded-For (HTTP_TRUST_PROXY=true), and said at start that it should not.
    expect(engine.logText()).toContain("HTTP_TRUST_PROXY=true believes any client's X-Forwarded-For");
  });

  it('merges anonymous page views into the profile that identifies, and 20 concurrent identifies of one email make one profile', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await postJson(`${engine.url}/v1/page`, { anonymousId: 'visitor-merge', name: `p${i}` }, auth())).status).toBe(200);
    }
    await waitForEvents(engine.services, 3, sql`name in ('p0', 'p1', 'p2')`);
    const [anonymousProfile] = await profilesOf(sql`name in ('p0', 'p1', 'p2')`);
    const identified = await postJson(`${engine.url}/v1/identify`, { anonymousId: 'visitor-merge', userId: 'merge-user' }, auth());
    expect(identified.status).toBe(200);
    // A known profile for the same person already exists: the anonymous one merges into it.
    await postJson(`${engine.url}/v1/identify`, { anonymousId: 'other-device', userId: 'merge-user', traits: { email: 'merge@example.com' } }, auth());
    await waitFor(
      async () => (await countEvents(engine.services, sql`type = 'identify' and profile_id = (select profile_id from app.events where name = 'p0' limit 1)`)) === 2,
      { what: 'both identifies on the profile of the anonymous page views' },
    );
    const [merged] = await profilesOf(sql`name in ('p0', 'p1', 'p2')`);
    expect(merged).toBe(anonymousProfile);
    expect((await db().selectFrom('app.profiles').select('id').where('id', '=', merged as string).execute()).length).toBe(1);

    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postJson(`${engine.url}/v1/identify`, { anonymousId: `concurrent-${i}`, traits: { email: 'twenty@example.com' } }, auth()),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    await waitFor(
      async () => {
        const s = await describeSubject(engine.services.databases, engine.services.keys, { email: 'twenty@example.com' });
        return s && s.identifiers.filter((i) => i.kind === 'anonymous').length === 20 ? s : undefined;
      },
      { what: '20 identities on one profile' },
    );
    const subject = await describeSubject(engine.services.databases, engine.services.keys, { email: 'twenty@example.com' });
    for (let i = 0; i < 20; i++) {
      const byAnonymous = await describeSubject(engine.services.databases, engine.services.keys, { anonymousId: `concurrent-${i}` });
      expect(byAnonymous?.profileId).toBe(subject?.profileId);
    }
    expect(subject?.events).toEqual([{ type: 'identify', count: 20 }]);
  });

  it('accepts what analytics.js sends: short paths, text/plain JSON, the write key in the body', async () => {
    const res = await fetch(`${engine.url}/v1/t`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', origin: 'https://shop.example' },
      body: JSON.stringify({ type: 'track', event: 'Browser Track', anonymousId: 'browser-1', writeKey: engine.writeKey, messageId: 'ajs-1' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    const batched = await fetch(`${engine.url}/v1/b`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ batch: [{ type: 'page', name: 'Browser Page', anonymousId: 'browser-1', messageId: 'ajs-2' }], writeKey: engine.writeKey }),
    });
    expect(batched.status).toBe(200);
    await waitForEvents(engine.services, 2, sql`message_id in ('ajs-1', 'ajs-2')`);
    expect(await profilesOf(sql`message_id in ('ajs-1', 'ajs-2')`)).toHaveLength(1);
  });

  it('links anonymous events to a profile whose alias arrived first, and never merges two known people', async () => {
    await postJson(`${engine.url}/v1/alias`, { userId: 'alias-first-user', previousId: 'alias-first-visitor', messageId: 'af-1' }, auth());
    await waitForEvents(engine.services, 1, sql`message_id = 'af-1'`);
    await postJson(`${engine.url}/v1/page`, { anonymousId: 'alias-first-visitor', name: 'Late page', messageId: 'af-2' }, auth());
    await waitForEvents(engine.services, 1, sql`message_id = 'af-2'`);
    expect(await profilesOf(sql`message_id in ('af-1', 'af-2')`)).toHaveLength(1);

    await postJson(`${engine.url}/v1/identify`, { userId: 'person-a', traits: { email: 'a@example.com' }, messageId: 'kk-1' }, auth());
    await postJson(`${engine.url}/v1/identify`, { userId: 'person-b', traits: { email: 'b@example.com' }, messageId: 'kk-2' }, auth());
    await waitForEvents(engine.services, 2, sql`message_id in ('kk-1', 'kk-2')`);
    // A userId of one person with the address of another: recorded, but the two stay apart.
    await postJson(`${engine.url}/v1/identify`, { userId: 'person-a', traits: { email: 'b@example.com' }, messageId: 'kk-3' }, auth());
    await waitForEvents(engine.services, 1, sql`message_id = 'kk-3'`);
    const a = await describeSubject(engine.services.databases, engine.services.keys, { userId: 'person-a' });
    const b = await describeSubject(engine.services.databases, engine.services.keys, { email: 'b@example.com' });
    expect(a?.profileId).toBeDefined();
    expect(b?.profileId).toBeDefined();
    expect(a?.profileId).not.toBe(b?.profileId);
    expect(a?.events).toEqual([{ type: 'identify', count: 2 }]);
  });

  it('stores each event in the partition of its month, with its source', async () => {
    const res = await postJson(
      `${engine.url}/v1/track`,
      { event: 'Imported', anonymousId: 'history', timestamp: '2024-03-15T10:00:00Z', messageId: 'old-1' },
      auth(),
    );
    expect(res.status).toBe(200);
    await waitForEvents(engine.services, 1, sql`message_id = 'old-1'`);
    const row = (await sql<{ partition: string; source_id: string; occurred_at: Date }>`
      select tableoid::regclass::text as partition, source_id, occurred_at from app.events where message_id = 'old-1'`.execute(db())).rows[0];
    expect(row).toEqual({ partition: 'app.events_2024_03', source_id: engine.sourceId, occurred_at: new Date('2024-03-15T10:00:00Z') });
  });

  it('stores each event of a batch once, however often the batch is replayed', async () => {
    const batch = {
      batch: Array.from({ length: 10 }, (_, i) => ({ type: 'track', event: 'Replayed', anonymousId: 'replayer', messageId: `replay-${i}` })),
    };
    for (let round = 0; round < 3; round++) expect((await postJson(`${engine.url}/v1/batch`, batch, auth())).status).toBe(200);
    const marker = { type: 'track', event: 'After replay', anonymousId: 'replayer', messageId: 'replay-marker' };
    await postJson(`${engine.url}/v1/track`, marker, auth());
    await waitForEvents(engine.services, 1, sql`name = 'After replay'`);
    // Jobs are processed in order by one queue; the marker's arrival means the replays were handled.
    await waitFor(async () => (await engine.services.queues.counts()).events.wait === 0 && (await engine.services.queues.counts()).events.active === 0, {
      what: 'queue drained',
    });
    expect(await countEvents(engine.services, sql`name = 'Replayed'`)).toBe(10);
  });

  it('accepts pixels in both forms and always answers the 43-byte GIF', async () => {
    const data = Buffer.from(JSON.stringify({ writeKey: engine.writeKey, anonymousId: 'pixel-visitor', event: 'Email Opened', messageId: 'px-1' })).toString('base64');
    const segmentForm = await fetch(`${engine.url}/v1/pixel/track?data=${encodeURIComponent(data)}`);
    const simpleForm = await fetch(`${engine.url}/t.gif?wk=${engine.writeKey}&t=page&aid=pixel-visitor&url=${encodeURIComponent('https://shop.example/?email=' + EMAIL)}&title=Home&mid=px-2`);
    for (const res of [segmentForm, simpleForm]) {
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/gif');
      expect(res.headers.get('cache-control')).toContain('no-store');
      expect((await res.arrayBuffer()).byteLength).toBe(43);
    }
    await waitForEvents(engine.services, 2, sql`message_id in ('px-1', 'px-2')`);
    const page = (await sql<{ properties: Record<string, unknown> }>`select properties from app.events where message_id = 'px-2'`.execute(db())).rows[0];
    expect(page?.properties.url).toBe('https://shop.example/?email=[redacted]');
  });
});

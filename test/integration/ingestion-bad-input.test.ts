import { sql } from 'kysely';
import { basicAuth, countEvents, postJson, startTestEngine, type TestEngine, waitForEvents } from '../support/engine';
import { startTestRedisServer, type TestRedisServer } from '../support/redis-server';
import { waitFor } from '../support/wait';
import { rulesLinkingByDefault } from '../support/rules';

type ErrorBody = { error: { code: string; message: string }; rejected?: unknown };

describe('ingestion: bad input gets a clear answer and harms nothing', () => {
  let engine: TestEngine;
  let redis: TestRedisServer;
  beforeAll(async () => {
    redis = await startTestRedisServer(['--maxmemory-policy', 'noeviction']);
    engine = await startTestEngine({ REDIS_URL: redis.url, RULES_DIR: rulesLinkingByDefault() });
  });
  afterAll(async () => {
    await engine.stop();
    await redis.stop();
  });
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });
  const track = (extra: Record<string, unknown> = {}) => ({ event: 'Clicked', anonymousId: 'bad-input', ...extra });

  it.each([
    ['malformed JSON', () => postJson(`${engine.url}/v1/track`, '{"event":', auth()), 400, 'INVALID_JSON', 'the body is not valid JSON'],
    ['a body that is not an object', () => postJson(`${engine.url}/v1/track`, '[1,2]', auth()), 400, 'VALIDATION_FAILED', '(body): expected a JSON object'],
    ['a wrong type', () => postJson(`${engine.url}/v1/track`, track({ event: 42 }), auth()), 400, 'VALIDATION_FAILED', 'event: '],
    ['no identity', () => postJson(`${engine.url}/v1/track`, { event: 'x' }, auth()), 400, 'VALIDATION_FAILED', 'userId: expected userId or anonymousId (or both)'],
    ['a bad timestamp', () => postJson(`${engine.url}/v1/track`, track({ timestamp: 'yesterday' }), auth()), 400, 'VALIDATION_FAILED', 'timestamp: expected an ISO 8601 date-time with a time zone'],
    ['CR/LF in a string', () => postJson(`${engine.url}/v1/track`, track({ properties: { note: 'a\r\nBcc: x' } }), auth()), 400, 'VALIDATION_FAILED', 'properties.note: control characters'],
    ['an oversized event', () => postJson(`${engine.url}/v1/track`, track({ properties: { blob: 'x'.repeat(40_000) } }), auth()), 413, 'PAYLOAD_TOO_LARGE', 'at most 32768 bytes are allowed per event'],
    ['an oversized batch', () => postJson(`${engine.url}/v1/batch`, { batch: Array.from({ length: 30 }, () => track({ properties: { blob: 'x'.repeat(20_000) } })) }, auth()), 413, 'PAYLOAD_TOO_LARGE', 'the body exceeds the limit of 512000 bytes for this route'],
    ['no write key', () => postJson(`${engine.url}/v1/track`, track()), 401, 'UNAUTHORIZED', 'send the source write key'],
    ['an unknown write key', () => postJson(`${engine.url}/v1/track`, track(), { authorization: basicAuth('wk_nobody') }), 401, 'UNAUTHORIZED', 'unknown write key'],
    ['an unknown write key in the body', () => postJson(`${engine.url}/v1/track`, track({ writeKey: 'wk_nobody' })), 401, 'UNAUTHORIZED', 'unknown write key'],
    ['an empty batch', () => postJson(`${engine.url}/v1/batch`, { batch: [] }, auth()), 400, 'VALIDATION_FAILED', 'batch: expected at least one event'],
  ])('%s', async (_what, send, status, code, message) => {
    const before = await countEvents(engine.services);
    const res = await send();
    expect(res.status).toBe(status);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe(code);
    expect(body.error.message).toContain(message);
    expect(await countEvents(engine.services)).toBe(before);
    expect((await fetch(`${engine.url}/healthz`)).status).toBe(200);
  });

  it('accepts the good events of a batch and reports the bad ones by index', async () => {
    const res = await postJson(
      `${engine.url}/v1/batch`,
      { batch: [{ type: 'track', event: 'Good 1', anonymousId: 'b' }, { type: 'track', anonymousId: 'b' }, { type: 'bogus' }, { type: 'page', name: 'Good 2', anonymousId: 'b' }] },
      auth(),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      success: true,
      accepted: 2,
      rejected: [
        { index: 1, code: 'VALIDATION_FAILED', message: 'event: expected an event name (a string)' },
        { index: 2, code: 'VALIDATION_FAILED', message: 'type: expected one of track, identify, page, screen, group, alias' },
      ],
    });
    await waitForEvents(engine.services, 2, sql`name in ('Good 1', 'Good 2')`);
  });

  it('answers the pixel GIF for bad input and counts why nothing was stored', async () => {
    for (const url of ['/v1/pixel/track?data=%%%', '/v1/pixel/bogus?data=e30=', '/t.gif', `/t.gif?wk=wk_nobody&aid=x`]) {
      const res = await fetch(`${engine.url}${url}`);
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBe(43);
    }
    const metrics = await (await fetch(`${engine.url}/metrics`)).text();
    for (const reason of ['malformed_data', 'unknown_type', 'missing_write_key', 'unknown_write_key']) {
      expect(metrics).toMatch(new RegExp(`consentflow_pixel_rejected_total\\{reason="${reason}"\\} [1-9]`));
    }
  });

  it('answers 503, never 2xx, while Redis is down, and accepts again when it returns, without a restart', async () => {
    await redis.stop();
    // The very first request after Redis died must already be refused: a 2xx here would be a lie.
    const down = await postJson(`${engine.url}/v1/track`, track({ event: 'During outage' }), auth());
    expect(down.status).toBe(503);
    expect(((await down.json()) as ErrorBody).error).toEqual({ code: 'UNAVAILABLE', message: 'the event queue is unavailable; nothing was accepted, retry later' });
    for (let i = 0; i < 5; i++) expect((await postJson(`${engine.url}/v1/track`, track({ event: 'During outage' }), auth())).status).toBe(503);
    await redis.start();
    await waitFor(async () => (await postJson(`${engine.url}/v1/track`, track({ event: 'After outage', messageId: 'after-outage' }), auth())).status === 200, {
      what: 'accepting again',
    });
    await waitForEvents(engine.services, 1, sql`message_id = 'after-outage'`);
    expect(await countEvents(engine.services, sql`name = 'During outage'`)).toBe(0);
  });
});

import { Worker } from 'node:worker_threads';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { createApiKey } from '../../engine/auth/api-keys';
import { createSource } from '../../engine/ingest/sources';
import { TEST_REDIS_URL } from '../support/env';
import { basicAuth, postJson, startTestEngine, type TestEngine } from '../support/engine';
import { rulesLinkingByDefault } from '../support/rules';
import { waitFor } from '../support/wait';

const FLOOD = 10_000;
const CONCURRENCY = 50;

interface FloodResult {
  readonly counts: Record<string, number>;
  /** Answers that were not the 43-byte image/gif. */
  readonly notGif: number;
  /** 429s without a Retry-After of whole seconds. */
  readonly noRetryAfter: number;
  readonly ms: number;
}

/**
 * The load generator, in its own thread (as an outside client would be): the engine's event loop
 * serves, it does not also generate the load. Plain JavaScript, so the thread needs no compiler.
 */
const FLOOD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { randomBytes } = require('node:crypto');
const { base, writeKey, total, concurrency } = workerData;
function url(n) {
  const key = writeKey ?? 'wk_' + randomBytes(24).toString('base64url');
  const aid = 'flood-visitor';
  if (n % 2 === 0) return base + '/t.gif?t=page&wk=' + encodeURIComponent(key) + '&aid=' + aid + '&mid=flood-' + n + '-' + randomBytes(4).toString('hex');
  const data = Buffer.from(JSON.stringify({ writeKey: key, anonymousId: aid, name: 'Flood', messageId: 'flood-' + n + '-' + randomBytes(4).toString('hex') })).toString('base64url');
  return base + '/v1/pixel/page?data=' + data;
}
(async () => {
  const started = performance.now();
  const counts = {};
  let notGif = 0, noRetryAfter = 0, next = 0;
  async function lane() {
    while (next < total) {
      const res = await fetch(url(next++));
      const body = await res.arrayBuffer();
      counts[res.status] = (counts[res.status] ?? 0) + 1;
      if (body.byteLength !== 43 || res.headers.get('content-type') !== 'image/gif') notGif++;
      if (res.status === 429 && !/^[1-9][0-9]*$/.test(res.headers.get('retry-after') ?? '')) noRetryAfter++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  parentPort.postMessage({ counts, notGif, noRetryAfter, ms: performance.now() - started });
})().catch((err) => { throw err; });
`;

function flood(base: string, writeKey: string | null): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(FLOOD_WORKER, { eval: true, workerData: { base, writeKey, total: FLOOD, concurrency: CONCURRENCY } });
    worker.once('message', (result: FloodResult) => {
      resolve(result);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

async function timed(request: () => Promise<Response>): Promise<number> {
  const started = performance.now();
  const res = await request();
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - started;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function redisUsedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
}

/** A counter's value in /metrics text (0 when the series is absent). */
async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

const count = async (engine: TestEngine, query: ReturnType<typeof sql>) =>
  Number((await sql<{ n: string }>`select count(*)::text as n from ${query}`.execute(engine.services.databases.db)).rows[0]?.n);

/** The "done when" of issue 8: a flood of pixel requests from one address harms nothing. */
describe('a flood of public requests from one address', () => {
  const PER_SECOND = 200;
  const BURST = 500;
  let engine: TestEngine;
  let redis: Redis;
  let queue: Queue;
  beforeAll(async () => {
    engine = await startTestEngine({
      RULES_DIR: rulesLinkingByDefault(),
      HTTP_RATE_LIMIT_PER_IP: `${PER_SECOND}/s,burst=${BURST}`,
      HTTP_RATE_LIMIT_PER_WRITE_KEY: 'off',
      LOG_LEVEL: 'warn',
    });
    redis = new Redis(TEST_REDIS_URL);
    queue = new Queue('events', { connection: redis, prefix: engine.services.config.queuePrefix });
  });
  afterAll(async () => {
    await queue.close();
    redis.disconnect();
    await engine.stop();
  });

  it('limits 10,000 random-key and 10,000 valid-key pixels with 429s, stores nothing of unknown keys, keeps Redis bounded and health and admin prompt', async () => {
    const admin = await createApiKey(engine.services.databases.db, { role: 'operator' });
    const readyz = () => fetch(`${engine.url}/readyz`);
    const whoami = () => fetch(`${engine.url}/admin/v1/whoami`, { headers: { authorization: `Bearer ${admin.key}` } });
    // Warm up, then the latencies before the flood.
    for (let i = 0; i < 5; i++) await Promise.all([timed(readyz), timed(whoami)]);
    const before = { readyz: [] as number[], whoami: [] as number[] };
    for (let i = 0; i < 15; i++) {
      before.readyz.push(await timed(readyz));
      before.whoami.push(await timed(whoami));
    }
    const memoryBefore = await redisUsedMemory(redis);

    // The flood runs in another thread; meanwhile this one keeps asking /readyz and the admin API.
    const during = { readyz: [] as number[], whoami: [] as number[] };
    let flooding = true;
    const sampling = (async () => {
      while (flooding) {
        during.readyz.push(await timed(readyz));
        during.whoami.push(await timed(whoami));
      }
    })();
    const started = performance.now();
    let random: FloodResult;
    let valid: FloodResult;
    let queuedAtEnd: number;
    try {
      random = await flood(engine.url, null);
      valid = await flood(engine.url, engine.writeKey);
      const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized', 'completed', 'failed');
      queuedAtEnd = Object.values(counts).reduce((a, b) => a + b, 0);
    } finally {
      flooding = false;
      await sampling;
    }
    const elapsedS = (performance.now() - started) / 1000;
    const memoryAfter = await redisUsedMemory(redis);

    // Every answer is the transparent GIF, the limited ones with 429 and Retry-After.
    for (const result of [random, valid]) {
      expect(result.notGif).toBe(0);
      expect(result.noRetryAfter).toBe(0);
      expect(Object.keys(result.counts).sort()).toEqual(['200', '429']);
      expect((result.counts['200'] ?? 0) + (result.counts['429'] ?? 0)).toBe(FLOOD);
    }
    // 429s after the limit: no more got through than the burst and what the rate refilled meanwhile.
    const passed = (random.counts['200'] ?? 0) + (valid.counts['200'] ?? 0);
    expect(random.counts['200']).toBeGreaterThanOrEqual(BURST);
    expect(passed).toBeLessThanOrEqual(BURST + PER_SECOND * elapsedS);
    const limited = (random.counts['429'] ?? 0) + (valid.counts['429'] ?? 0);
    expect(limited).toBe(2 * FLOOD - passed);
    expect(await metric(engine.url, 'consentflow_http_rate_limited_total{scope="ip",route="pixel"}')).toBe(limited);

    // What the valid key got through is processed; nothing of the unknown keys is stored anywhere.
    const accepted = valid.counts['200'] ?? 0;
    expect(accepted).toBeGreaterThan(0);
    await waitFor(async () => (await count(engine, sql`app.event_receipts`)) === accepted, { what: `${accepted} receipts`, timeoutMs: 30_000 });
    expect(await count(engine, sql`app.event_receipts where source_id <> ${engine.sourceId}`)).toBe(0);
    expect(await count(engine, sql`app.events where source_id <> ${engine.sourceId}`)).toBe(0);
    expect(await count(engine, sql`app.profiles where source_id <> ${engine.sourceId}`)).toBe(0);
    expect(await count(engine, sql`app.events`)).toBeLessThanOrEqual(accepted);
    expect(await count(engine, sql`app.profiles`)).toBe(1);

    // Redis holds at most what was accepted: the queue had no more jobs than accepted requests, and
    // memory grew by no more than a few KB per accepted event (plus room for the other test files
    // sharing this Redis), far from what 20,000 stored requests would take.
    expect(queuedAtEnd).toBeLessThanOrEqual(accepted);
    expect(memoryAfter - memoryBefore).toBeLessThanOrEqual(accepted * 4_096 + 16 * 1024 * 1024);

    // Health and admin stay prompt: the median during the flood within max(10×, 250 ms) of before.
    for (const name of ['readyz', 'whoami'] as const) {
      expect(during[name].length).toBeGreaterThanOrEqual(3);
      expect(median(during[name])).toBeLessThanOrEqual(Math.max(10 * median(before[name]), 250));
    }
    process.stdout.write(
      `flood: ${elapsedS.toFixed(1)} s, ${passed} passed, ${limited} limited; redis +${((memoryAfter - memoryBefore) / 1024).toFixed(0)} KB; ` +
        `readyz ${median(before.readyz).toFixed(1)} → ${median(during.readyz).toFixed(1)} ms (${during.readyz.length} samples), ` +
        `whoami ${median(before.whoami).toFixed(1)} → ${median(during.whoami).toFixed(1)} ms\n`,
    );
  }, 90_000);
});

/** X-Forwarded-For is believed only from the proxies HTTP_TRUST_PROXY names (OWASP ASVS 5.0 V4.1.3). */
describe('the client address behind proxies', () => {
  const LIMITS = { HTTP_RATE_LIMIT_PER_IP: '1/m,burst=3', HTTP_RATE_LIMIT_PER_WRITE_KEY: 'off', LOG_LEVEL: 'warn' };
  const pixel = (engine: TestEngine, forwardedFor: string) =>
    fetch(`${engine.url}/t.gif?wk=${engine.writeKey}&t=page&aid=proxy-visitor`, { headers: { 'x-forwarded-for': forwardedFor } });

  it('from an untrusted peer, X-Forwarded-For does not let a client dodge its limit', async () => {
    const engine = await startTestEngine({ ...LIMITS, HTTP_TRUST_PROXY: 'false' });
    try {
      for (let i = 1; i <= 3; i++) expect((await pixel(engine, `203.0.113.${i}`)).status).toBe(200);
      const limited = await pixel(engine, '203.0.113.4');
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      expect((await limited.arrayBuffer()).byteLength).toBe(43);
      // The JSON API shares the address's bucket and answers a JSON error.
      const api = await postJson(`${engine.url}/v1/track`, { event: 'E', anonymousId: 'a' }, { authorization: basicAuth(engine.writeKey), 'x-forwarded-for': '198.51.100.1' });
      expect(api.status).toBe(429);
      expect(Number(api.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await api.json()).toEqual({
        error: { code: 'RATE_LIMITED', message: expect.stringMatching(/^too many requests from this client address; nothing was accepted, retry after \d+ s$/) },
      });
      expect(await metric(engine.url, 'consentflow_http_rate_limited_total{scope="ip",route="api"}')).toBe(1);
      expect(await metric(engine.url, 'consentflow_http_rate_limited_total{scope="ip",route="pixel"}')).toBe(1);
    } finally {
      await engine.stop();
    }
  });

  it('from a trusted proxy, each forwarded client has its own bucket, and a forged hop changes nothing', async () => {
    const engine = await startTestEngine({ ...LIMITS, HTTP_TRUST_PROXY: '127.0.0.1' });
    try {
      for (let i = 0; i < 3; i++) expect((await pixel(engine, '203.0.113.1')).status).toBe(200);
      expect((await pixel(engine, '203.0.113.1')).status).toBe(429);
      // The proxy appends the address it saw: a client's own X-Forwarded-For entry is left of it.
      expect((await pixel(engine, '198.51.100.77, 203.0.113.1')).status).toBe(429);
      expect((await pixel(engine, '203.0.113.2')).status).toBe(200);
      // IPv6: one bucket per /64.
      for (let i = 1; i <= 3; i++) expect((await pixel(engine, `2001:db8:0:1::${i}`)).status).toBe(200);
      expect((await pixel(engine, '2001:db8:0:1:ffff::9')).status).toBe(429);
      expect((await pixel(engine, '2001:db8:0:2::1')).status).toBe(200);
    } finally {
      await engine.stop();
    }
  });

  it("limits a valid write key across addresses, and never counts an unknown key's requests against anyone", async () => {
    const engine = await startTestEngine({ HTTP_TRUST_PROXY: '127.0.0.1', HTTP_RATE_LIMIT_PER_IP: '1/m,burst=2', HTTP_RATE_LIMIT_PER_WRITE_KEY: '1/m,burst=3', LOG_LEVEL: 'warn' });
    try {
      const other = await createSource(engine.services.databases.db, 'other site');
      for (let i = 1; i <= 3; i++) expect((await pixel(engine, `203.0.113.${i}`)).status).toBe(200);
      const limited = await pixel(engine, '203.0.113.4');
      expect(limited.status).toBe(429);
      expect((await limited.arrayBuffer()).byteLength).toBe(43);
      const api = await postJson(`${engine.url}/v1/track`, { event: 'E', anonymousId: 'a' }, { authorization: basicAuth(engine.writeKey), 'x-forwarded-for': '203.0.113.5' });
      expect(api.status).toBe(429);
      expect(((await api.json()) as { error: { message: string } }).error.message).toMatch(/^too many requests with this source's write key;/);
      // Another source has its own bucket.
      const ok = await postJson(`${engine.url}/v1/track`, { event: 'E', anonymousId: 'a' }, { authorization: basicAuth(other.writeKey), 'x-forwarded-for': '203.0.113.6' });
      expect(ok.status).toBe(200);
      // Unknown keys meet only their address's limit: two pass (as GIFs that store nothing), the third is limited.
      const unknown = (n: number) => fetch(`${engine.url}/t.gif?wk=wk_unknown${n}&aid=x`, { headers: { 'x-forwarded-for': '192.0.2.1' } });
      expect([(await unknown(1)).status, (await unknown(2)).status, (await unknown(3)).status]).toEqual([200, 200, 429]);
      expect(await metric(engine.url, 'consentflow_http_rate_limited_total{scope="write_key",route="pixel"}')).toBe(1);
      expect(await metric(engine.url, 'consentflow_http_rate_limited_total{scope="write_key",route="api"}')).toBe(1);
      expect(await metric(engine.url, 'consentflow_http_rate_limited_total{scope="ip",route="pixel"}')).toBe(1);
    } finally {
      await engine.stop();
    }
  });
});

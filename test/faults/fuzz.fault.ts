import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { loadRuleSet } from '../../engine/rules/load';
import { basicAuth } from '../support/engine';
import { tempDir } from '../support/config';
import { waitFor } from '../support/wait';
import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { unprocessed, waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { consentBody, type FuzzRequest, hostileString, pixelPath, trackingRequest } from './harness/fuzz';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { faultRules } from './harness/rules';

const RUNS = Number(process.env.FAULTS_FUZZ_RUNS ?? 300);

/**
 * Scenario 10 (issue 10): fast-check over the public API bodies (tracking, batch, consent), pixel
 * data and the rule files: never a crash, never a 5xx, never a partial write (a 4xx leaves nothing
 * behind; what a 2xx accepted is processed, none of it refused later by PostgreSQL). A failing case
 * prints fast-check's seed and path: FAULTS_FUZZ_SEED=… replays it.
 */
describe('fault 10: hostile input to the public API, pixels and rule files', () => {
  let cluster: FaultCluster;
  let api: EngineProcess;
  const seed = process.env.FAULTS_FUZZ_SEED ? Number(process.env.FAULTS_FUZZ_SEED) : undefined;
  const params = { numRuns: RUNS, ...(seed === undefined ? {} : { seed }), endOnFailure: true };
  const statuses = new Map<string, number>();
  const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1);
  let started = 0;
  beforeAll(async () => {
    started = Date.now();
    cluster = await startFaultCluster({ RULES_DIR: faultRules(), SHUTDOWN_TIMEOUT_MS: '5000' });
    [api] = await Promise.all([cluster.api(), cluster.worker(['events'], 'events')]);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  async function send(request: FuzzRequest): Promise<{ status: number; text: string }> {
    const res = await fetch(`${api.url}${request.path}`, {
      method: 'POST',
      headers: { 'content-type': request.contentType, authorization: basicAuth(cluster.writeKey) },
      body: request.raw ? (request.body as string) : JSON.stringify(request.body),
    });
    return { status: res.status, text: await res.text() };
  }

  /** The fz ids of a request's events: [id, index in the batch]; ids seen twice are ambiguous and dropped. */
  const seen = new Map<string, number>();
  const accepted = new Set<string>();
  const refused = new Set<string>();
  function idsOf(request: FuzzRequest): Array<[string, number]> {
    const body = request.body as { batch?: unknown } | null;
    const items: unknown[] = request.path.endsWith('/batch') || request.path.endsWith('/b') ? (Array.isArray(body?.batch) ? body.batch : []) : [body];
    const out: Array<[string, number]> = [];
    items.forEach((item, index) => {
      const id = (item as { messageId?: unknown } | null)?.messageId;
      if (typeof id === 'string' && /^fz-\d+$/.test(id)) {
        seen.set(id, (seen.get(id) ?? 0) + 1);
        out.push([id, index]);
      }
    });
    return out;
  }

  it('answers every tracking body with a 2xx or a 4xx, and processes exactly what it accepted', async () => {
    await fc.assert(
      fc.asyncProperty(trackingRequest, async (request) => {
        const { status, text } = await send(request);
        count(`tracking ${status}`);
        if (status >= 500) throw new Error(`${status} for ${request.path}: ${text.slice(0, 300)}`);
        const ids = idsOf(request);
        if (status >= 200 && status < 300) {
          const rejected = new Set(((JSON.parse(text) as { rejected?: Array<{ index: number }> }).rejected ?? []).map((r) => r.index));
          for (const [id, index] of ids) (rejected.has(index) ? refused : accepted).add(id);
        } else {
          for (const [id] of ids) refused.add(id);
        }
      }),
      params,
    );
    // Once the queue has drained: every accepted event was processed, none refused was.
    await waitOrExplain(cluster, async () => (await cluster.pending('events')) === 0, 'the events queue drained', 60_000);
    const unambiguous = (ids: Set<string>) => [...ids].filter((id) => seen.get(id) === 1 && !(accepted.has(id) && refused.has(id)));
    await waitFor(async () => (await unprocessed(cluster, unambiguous(accepted))).length === 0, { timeoutMs: 30_000, what: 'every accepted event processed' }).catch(() => undefined);
    const acceptedNotProcessed = await unprocessed(cluster, unambiguous(accepted));
    const refusedIds = unambiguous(refused);
    const refusedProcessed = refusedIds.length - (await unprocessed(cluster, refusedIds)).length;
    const failedJobs = (await cluster.jobCounts('events')).failed;
    const rejections = await cluster.number('select count(*) from app.event_rejections');
    statuses.set('tracking accepted', accepted.size);
    statuses.set('tracking refused', refused.size);
    statuses.set('accepted but not processed', acceptedNotProcessed.length);
    statuses.set('refused but processed', refusedProcessed);
    statuses.set('events set aside by PostgreSQL', rejections);
    statuses.set('events jobs failed', failedJobs);
    expect({ acceptedNotProcessed, refusedProcessed, rejections, failedJobs }).toEqual({ acceptedNotProcessed: [], refusedProcessed: 0, rejections: 0, failedJobs: 0 });
    expect(accepted.size).toBeGreaterThan(0);
    expect(refused.size).toBeGreaterThan(0);
  });

  it('answers every pixel with the GIF', async () => {
    await fc.assert(
      fc.asyncProperty(pixelPath(cluster.writeKey), async (pixel) => {
        const res = await fetch(`${api.url}${pixel}`);
        const body = Buffer.from(await res.arrayBuffer());
        count(`pixel ${res.status}`);
        // Node's HTTP parser refuses a request line and headers over 16 KB (--max-http-header-size)
        // with 431 before the engine sees it: a limit of the platform, not a crash.
        if (res.status === 431 && pixel.length > 16_000) return;
        if (![200, 429].includes(res.status) || res.headers.get('content-type') !== 'image/gif' || body.length !== 43) {
          throw new Error(`${res.status} ${res.headers.get('content-type')} (${body.length} bytes) for ${pixel.slice(0, 300)}`);
        }
      }),
      params,
    );
    await waitOrExplain(cluster, async () => (await cluster.pending('events')) === 0, 'the events queue drained', 60_000);
    expect((await cluster.jobCounts('events')).failed).toBe(0);
    expect(await cluster.number('select count(*) from app.event_rejections')).toBe(0);
  });

  it('answers every consent body with a 2xx or a 4xx, and a 4xx records nothing', async () => {
    const footprint = async () =>
      (await cluster.rows<{ n: string }>(
        `select (select count(*) from app.consent_ledger) || '/' || (select count(*) from app.profiles) || '/' || (select count(*) from app.consent_confirmations) || '/' || (select count(*) from vault.identities) as n`,
      ))[0]?.n;
    await fc.assert(
      fc.asyncProperty(consentBody, async (body) => {
        const before = await footprint();
        const { status, text } = await send({ path: '/v1/consent', body, contentType: 'application/json', raw: false });
        count(`consent ${status}`);
        if (status >= 500) throw new Error(`${status} for ${JSON.stringify(body).slice(0, 300)}: ${text.slice(0, 300)}`);
        if (status >= 400) {
          const after = await footprint();
          if (after !== before) throw new Error(`a ${status} left a write behind (ledger/profiles/confirmations/identities ${before} → ${after}): ${JSON.stringify(body).slice(0, 300)}`);
        }
      }),
      { ...params, numRuns: Math.ceil(RUNS / 2) },
    );
    expect(statuses.get('consent 200') ?? 0).toBeGreaterThan(0);
  });

  it('checks hostile rule files without crashing: each problem has a file, line and column', async () => {
    const base = faultRules();
    const shipped = fs.readFileSync(path.join(base, 'campaigns', 'fault_welcome.yaml'), 'utf8');
    const lines = shipped.split('\n');
    const edit = fc.oneof(
      // A line replaced, a line's text cut, a value swapped for a hostile one, the whole file replaced.
      fc.tuple(fc.nat(lines.length - 1), hostileString).map(([i, text]) => lines.map((l, j) => (j === i ? text : l)).join('\n')),
      fc.tuple(fc.nat(lines.length - 1), fc.nat(40)).map(([i, cut]) => lines.map((l, j) => (j === i ? l.slice(0, cut) : l)).join('\n')),
      fc.tuple(fc.nat(lines.length - 1), hostileString).map(([i, value]) => lines.map((l, j) => (j === i && l.includes(':') ? `${l.slice(0, l.indexOf(':') + 1)} ${JSON.stringify(value)}` : l)).join('\n')),
      hostileString,
      fc.constantFrom('&a [*a, *a]\nx: *a', 'a: &a\n  b: *a', '%YAML 9.9\n---\nid: x', 'id: !!binary AAAA', `id: fault_welcome\n${'  '.repeat(200)}x: 1`),
    );
    let problems = 0;
    let ok = 0;
    await fc.assert(
      fc.asyncProperty(edit, async (text) => {
        const dir = tempDir('cf-fuzz-rules');
        fs.cpSync(base, dir, { recursive: true });
        fs.writeFileSync(path.join(dir, 'campaigns', 'fault_welcome.yaml'), text);
        try {
          const loaded = loadRuleSet(dir);
          if (loaded.ok) ok++;
          else {
            problems++;
            for (const p of loaded.problems) {
              if (!p.file || !Number.isInteger(p.line) || !Number.isInteger(p.column) || !p.message) throw new Error(`a problem without its place: ${JSON.stringify(p)}`);
            }
          }
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
      { ...params, numRuns: Math.ceil(RUNS / 3) },
    );
    statuses.set('rule files ok', ok);
    statuses.set('rule files with problems', problems);
    expect(problems).toBeGreaterThan(0);
  });

  it('is still up, and nothing crashed', async () => {
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    expect(unexpectedExits()).toEqual([]);
    const counts = Object.fromEntries(statuses);
    const fiveXX = [...statuses].filter(([k]) => / 5\d\d$/.test(k)).reduce((n, [, v]) => n + v, 0);
    recordFigure('10-fuzz', {
      scenario: '10 hostile input (fast-check)',
      load: `${RUNS} tracking/batch bodies, ${RUNS} pixels, ${Math.ceil(RUNS / 2)} consent bodies, ${Math.ceil(RUNS / 3)} rule files`,
      fault: 'mutated valid bodies: hostile strings, lone surrogates, NUL, deep nesting, huge values, wrong types, missing fields',
      lost: Number(counts['accepted but not processed'] ?? 0) + Number(counts['events set aside by PostgreSQL'] ?? 0),
      duplicated: 0,
      recoveryMs: null,
      counts: { ...counts, fiveXX, seed: seed ?? 'random' },
      durationMs: Date.now() - started,
    });
  });
});

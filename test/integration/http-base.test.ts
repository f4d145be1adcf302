import type { FastifyInstance } from 'fastify';
import { buildHttpServer } from '../../engine/http/server';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';

/** Prometheus text exposition format 0.0.4: comments, or `name{labels} value`. */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?[0-9.eE+-]+|NaN|[+-]Inf$/;

describe('HTTP base', () => {
  let env: TestServices;
  let app: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    env = await openTestServices();
    app = await buildHttpServer(env.services);
    base = await listen(app);
  });
  afterAll(async () => {
    await app.close();
    await env.close();
  });

  it('answers liveness and readiness', async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  });

  it('serves valid Prometheus text with queue depth gauges read at scrape time', async () => {
    const now = new Date().toISOString();
    const event = { type: 'track' as const, event: 'Test', anonymousId: 'a1' };
    await env.services.queues.enqueue('events', 'ingest', {
      events: [{ sourceId: '00000000-0000-4000-8000-000000000001', messageId: 'm1', receivedAt: now, occurredAt: now, signals: { gpc: false, dnt: false }, event }],
    });
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const lines = (await res.text()).split('\n').filter((line) => line !== '');
    for (const line of lines) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/);
      else expect(line).toMatch(SAMPLE);
    }
    expect(lines).toContain('# TYPE consentflow_queue_jobs gauge');
    expect(lines).toContain('consentflow_queue_jobs{queue="events",state="wait"} 1');
    expect(lines).toContain('consentflow_queue_jobs{queue="events",state="active"} 0');
    expect(lines).toContain('consentflow_queue_scrape_success 1');
    expect(lines.some((line) => line.startsWith('consentflow_process_resident_memory_bytes'))).toBe(true);
  });

  it('answers every error with the same JSON shape', async () => {
    const notFound = await fetch(`${base}/nowhere?email=x@example.com`);
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route GET /nowhere' } });

    const headers = { authorization: 'Bearer cfk_invalid', 'content-type': 'application/json' };
    const badJson = await fetch(`${base}/admin/v1/keys`, { method: 'POST', headers, body: '{"role":' });
    // Authentication runs first: an anonymous caller learns nothing about the body's handling.
    expect(badJson.status).toBe(401);
    expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  });

  it('counts error responses by code', async () => {
    await fetch(`${base}/nowhere`);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/consentflow_http_errors_total\{code="NOT_FOUND"\} [1-9]/);
  });
});

import { type RunningCli, runCli, spawnCli } from '../support/cli';
import { testEnv } from '../support/config';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { freePort } from '../support/redis-server';
import { waitFor } from '../support/wait';

/** The value of one series in Prometheus text, or undefined when the series is absent. */
function series(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

/**
 * A worker process (no API) serves /healthz, /readyz and /metrics on WORKER_METRICS_PORT, so its own
 * counters can be scraped; and the ops series the dashboard needs: queue ages, processing latency,
 * open erasure requests.
 */
describe('worker metrics (WORKER_METRICS_PORT)', () => {
  let database: TestDatabase;
  let env: Record<string, string | undefined>;
  const running: RunningCli[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
    env = testEnv({ DATABASE_URL: database.url });
  });
  afterAll(async () => {
    for (const cli of running) {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
    await database.drop();
  });

  const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  it('reports how long events wait, then how long they took, from the worker that processed them', async () => {
    const { writeKey } = JSON.parse(runCli(['sources', 'add', 'metrics site', '--json'], env).stdout) as { writeKey: string };
    const apiPort = await freePort();
    const api = spawnCli(['api'], { ...env, HTTP_PORT: String(apiPort) });
    running.push(api);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${apiPort}/healthz`).catch(() => undefined))?.ok === true, { timeoutMs: 30_000, what: 'api up' });

    // No events worker yet: the accepted events wait in their queue, and the API's scrape says for how long.
    const auth = `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
    const batch = { batch: Array.from({ length: 20 }, (_, i) => ({ type: 'track', event: 'Viewed', anonymousId: `visitor-${i}` })) };
    const accepted = await fetch(`http://127.0.0.1:${apiPort}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body: JSON.stringify(batch),
    });
    expect(accepted.status).toBe(200);
    await waitFor(async () => (series(await scrape(apiPort), 'consentflow_queue_oldest_waiting_seconds{queue="events"}') ?? 0) > 0, {
      what: 'the events queue to show a waiting job with an age',
    });
    expect(series(await scrape(apiPort), 'consentflow_queue_oldest_waiting_seconds{queue="email"}')).toBe(0);
    expect(series(await scrape(apiPort), 'consentflow_erasure_requests_open')).toBe(0);

    const metricsPort = await freePort();
    const worker = spawnCli(['worker', '--queues', 'events'], { ...env, WORKER_METRICS_PORT: String(metricsPort) });
    running.push(worker);
    await waitFor(async () => (series(await scrape(metricsPort).catch(() => ''), 'consentflow_event_processing_seconds_count') ?? 0) >= 20, {
      timeoutMs: 30_000,
      what: "the worker's histogram to count the 20 events",
    });
    const text = await scrape(metricsPort);
    expect(series(text, 'consentflow_event_processing_seconds_count')).toBe(20);
    expect(series(text, 'consentflow_event_processing_seconds_sum')).toBeGreaterThan(0);
    // The events waited for the worker to start: none of them can have taken under 10 ms.
    expect(series(text, 'consentflow_event_processing_seconds_bucket{le="0.01"}')).toBe(0);
    expect(series(text, 'consentflow_events_processed_total{outcome="stored"}')).toBe(20);
    expect(series(text, 'consentflow_queue_oldest_waiting_seconds{queue="events"}')).toBe(0);
    expect((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
    // Only health and metrics: the tracking API is not served by a worker.
    expect((await fetch(`http://127.0.0.1:${metricsPort}/v1/batch`, { method: 'POST', body: '{}' })).status).toBe(404);

    worker.child.kill('SIGTERM');
    api.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(await api.exited).toBe(0);
  }, 90_000);

  it('refuses a port that is not one, naming the variable', () => {
    const result = runCli(['worker', '--queues', 'events'], { ...env, WORKER_METRICS_PORT: 'nine' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('WORKER_METRICS_PORT');
    expect(result.stderr).toContain('expected an integer between 0 and 65535');
  });
});

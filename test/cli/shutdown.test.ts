import net from 'node:net';
import { spawnCli } from '../support/cli';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { testEnv } from '../support/config';
import { freePort } from '../support/redis-server';
import { waitFor } from '../support/wait';

/**
 * Shutdown with work still in flight: a request whose body never finishes arriving keeps the HTTP
 * server draining, so the deadline and the second signal can be seen doing their job.
 */
describe('shutdown with a request in flight', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  async function startApiWithHungRequest(env: Record<string, string | undefined>) {
    const port = await freePort();
    const cli = spawnCli(['api'], testEnv({ DATABASE_URL: database.url, HTTP_PORT: String(port), LOG_LEVEL: 'info', ...env }));
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, { timeoutMs: 30_000, what: 'api up' });
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    // Headers and half a body: the request stays in flight until the socket closes.
    socket.write('POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"event":');
    // Signal only once the server has the request (the metrics request itself counts as one more).
    await waitFor(async () => /consentflow_http_requests_in_flight 2/.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()), {
      what: 'the half-sent request to be in flight',
    });
    return { cli, socket };
  }

  it('gives up at SHUTDOWN_TIMEOUT_MS and exits 1, saying what did not close', async () => {
    const { cli, socket } = await startApiWithHungRequest({ SHUTDOWN_TIMEOUT_MS: '1500' });
    const stoppedAt = Date.now();
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(1);
    const took = Date.now() - stoppedAt;
    expect(took).toBeGreaterThanOrEqual(1_400);
    expect(took).toBeLessThan(4_000); // the deadline, plus time to log and exit: not a speed target
    expect(cli.output()).toContain('"resource":"http server"');
    expect(cli.output()).toContain('stopped, but not everything closed cleanly');
    socket.destroy();
  });

  it('exits at once (130) on a second signal while draining', async () => {
    const { cli, socket } = await startApiWithHungRequest({ SHUTDOWN_TIMEOUT_MS: '60000' });
    cli.child.kill('SIGTERM');
    await waitFor(() => cli.output().includes('draining'), { what: 'the first signal taken' });
    const secondAt = Date.now();
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(130);
    expect(Date.now() - secondAt).toBeLessThan(5_000);
    expect(cli.output()).toContain('second signal: exiting now without waiting');
    socket.destroy();
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { processesMentioning, runCli, spawnCli } from '../support/cli';
import { basicAuth, postJson } from '../support/engine';
import { testEnv } from '../support/config';
import { freePort } from '../support/redis-server';
import { waitFor } from '../support/wait';

/** The quick start's path: `consentflow start` with no DATABASE_URL, in a real process. */
describe('consentflow start on the embedded default', () => {
  it('creates the embedded database, migrates, serves health, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const env = testEnv({ HTTP_PORT: String(port), LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '5000' });
    const cli = spawnCli(['start'], env);
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 60_000, what: `readyz: ${cli.output()}` });
      expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
      expect(fs.existsSync(path.join(env.DATA_DIR as string, 'pgdata', 'PG_VERSION'))).toBe(true);
      expect(cli.output()).toContain('migrations applied');

      const stoppedAt = Date.now();
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(5_000);
      expect(cli.output()).toContain('"clean":true');
      expect(processesMentioning(env.DATA_DIR as string)).toEqual([]);
      await expect(fetch(`${base}/healthz`)).rejects.toThrow();
      expect(fs.existsSync(path.join(env.DATA_DIR as string, 'consentflow.pid'))).toBe(false);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });

  it('ingests on the embedded database: events in over HTTP, the person readable after a restart', async () => {
    const env = testEnv({ LOG_LEVEL: 'silent' });
    const source = JSON.parse(runCli(['sources', 'add', 'embedded site', '--json'], env).stdout) as { writeKey: string };
    const port = await freePort();
    const cli = spawnCli(['start'], { ...env, HTTP_PORT: String(port) });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { timeoutMs: 60_000, what: `readyz: ${cli.output()}` });
      const auth = { authorization: basicAuth(source.writeKey) };
      // The shipped purposes file asks consent for analytics: the visitor accepts the banner first.
      const consent = await postJson(
        `${base}/v1/consent`,
        { anonymousId: 'embedded-visitor', grant: ['analytics'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner' },
        auth,
      );
      expect(consent.status).toBe(200);
      expect((await postJson(`${base}/v1/page`, { anonymousId: 'embedded-visitor', name: 'Home' }, auth)).status).toBe(200);
      expect((await postJson(`${base}/v1/identify`, { anonymousId: 'embedded-visitor', traits: { email: 'embedded@example.com' } }, auth)).status).toBe(200);
      await waitFor(async () => /consentflow_events_processed_total\{outcome="stored"\} 2/.test(await (await fetch(`${base}/metrics`)).text()), {
        what: 'two events stored',
      });
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
    const shown = JSON.parse(runCli(['subject', 'show', '--anonymous-id', 'embedded-visitor', '--reason', 'ticket 3', '--json'], env).stdout) as {
      fields: Array<{ field: string; value: string }>;
      events: Array<{ type: string; count: number }>;
      consent: Array<{ purpose: string; decision: string; method: string }>;
    };
    expect(shown.consent).toEqual([expect.objectContaining({ purpose: 'analytics', decision: 'granted', method: 'banner' })]);
    expect(shown.fields.map((f) => [f.field, f.value])).toEqual([['email', 'embedded@example.com']]);
    // The consent itself arrived as a `Consent Updated` track event, linked once analytics was granted.
    expect(shown.events).toEqual([
      { type: 'identify', count: 1 },
      { type: 'page', count: 1 },
      { type: 'track', count: 1 },
    ]);
  });

  it('starts its own redis-server under DATA_DIR when asked, and leaves no process behind', async () => {
    const port = await freePort();
    const env = testEnv({ HTTP_PORT: String(port), REDIS_URL: undefined, EMBEDDED_REDIS: 'always', LOG_LEVEL: 'info' });
    const cli = spawnCli(['start'], env);
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, {
        timeoutMs: 60_000,
        what: `readyz: ${cli.output()}`,
      });
      expect(cli.output()).toContain('embedded redis-server started');
      expect(processesMentioning(path.join(env.DATA_DIR as string, 'redis')).some((p) => p.includes('redis-server'))).toBe(true);
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(processesMentioning(env.DATA_DIR as string)).toEqual([]);
      // The AOF was written: queued jobs would survive a restart.
      expect(fs.readdirSync(path.join(env.DATA_DIR as string, 'redis')).some((f) => f.startsWith('appendonly'))).toBe(true);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  });
});

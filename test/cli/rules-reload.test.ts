import fs from 'node:fs';
import path from 'node:path';
import { createApiKey } from '../../engine/auth/api-keys';
import { spawnCli } from '../support/cli';
import { testEnv, tempDir } from '../support/config';
import { createTestDatabase } from '../support/database';
import { postJson, startTestEngine, type TestEngine } from '../support/engine';
import { freePort } from '../support/redis-server';
import { SHIPPED_RULES_DIR } from '../support/rules';
import { waitFor } from '../support/wait';

function copyRules(): string {
  const dir = tempDir('cf-rules');
  fs.cpSync(SHIPPED_RULES_DIR, dir, { recursive: true });
  return dir;
}

const renameWelcome = (dir: string, name: string) => {
  const file = path.join(dir, 'campaigns', 'welcome_series.yaml');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/^name: .*$/m, `name: ${name}`));
};

/** Rules are re-read on SIGHUP and through the admin API; a set with problems is refused whole. */
describe('reloading the rules', () => {
  let engine: TestEngine;
  let dir: string;
  let marketer: string;
  beforeAll(async () => {
    dir = copyRules();
    engine = await startTestEngine({ RULES_DIR: dir });
    marketer = (await createApiKey(engine.services.databases.db, { role: 'marketer', name: 'marketing' })).key;
  });
  afterAll(async () => {
    await engine.stop();
  });
  const admin = (key: string, route: string, body?: unknown) =>
    body === undefined
      ? fetch(`${engine.url}/admin/v1${route}`, { headers: { authorization: `Bearer ${key}` } })
      : postJson(`${engine.url}/admin/v1${route}`, body, { authorization: `Bearer ${key}` });

  it('through the admin API: a changed set becomes the running one and is recorded; a broken one is refused', async () => {
    const before = (await (await admin(marketer, '/rules')).json()) as { version: string; campaigns: Array<{ id: string; name: string }> };
    expect(before.campaigns.map((c) => c.id)).toEqual(['abandoned_cart', 'reengagement', 'weekly_digest', 'welcome_series']);

    renameWelcome(dir, 'Welcome series (v2)');
    const reloaded = await admin(marketer, '/rules/reload', {});
    expect(reloaded.status).toBe(200);
    const result = (await reloaded.json()) as { version: string; previous: string; changed: boolean };
    expect(result).toEqual({ version: expect.stringMatching(/^[0-9a-f]{64}$/), previous: before.version, changed: true });
    const after = (await (await admin(marketer, '/rules')).json()) as { version: string; campaigns: Array<{ id: string; name: string }> };
    expect(after.version).toBe(result.version);
    expect(after.campaigns.find((c) => c.id === 'welcome_series')?.name).toBe('Welcome series (v2)');
    const recorded = await engine.services.databases.db.selectFrom('app.rule_sets').select('version').execute();
    expect(recorded.map((r) => r.version).sort()).toEqual([before.version, result.version].sort());

    // A typo: refused whole, with each problem located, and the running set stays.
    const file = path.join(dir, 'campaigns', 'abandoned_cart.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('reenter_after: 7d', 'reenter_after: 7days'));
    const broken = await admin(marketer, '/rules/reload', {});
    expect(broken.status).toBe(422);
    const body = (await broken.json()) as { error: { code: string }; problems: string[] };
    expect(body.error.code).toBe('RULES_INVALID');
    expect(body.problems).toEqual([expect.stringMatching(/campaigns\/abandoned_cart\.yaml:\d+:\d+ expected a duration/)]);
    expect(((await (await admin(marketer, '/rules')).json()) as { version: string }).version).toBe(result.version);

    const operator = (await createApiKey(engine.services.databases.db, { role: 'operator', name: 'ops' })).key;
    expect((await admin(operator, '/rules/reload', {})).status).toBe(403);
  });

  it('on SIGHUP, in a running process', async () => {
    const rules = copyRules();
    const database = await createTestDatabase();
    const port = await freePort();
    const cli = spawnCli(['start'], testEnv({ DATABASE_URL: database.url, RULES_DIR: rules, HTTP_PORT: String(port), LOG_LEVEL: 'info' }));
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, what: `readyz: ${cli.output()}` });
      renameWelcome(rules, 'Welcome series (SIGHUP)');
      cli.child.kill('SIGHUP');
      await waitFor(async () => cli.output().includes('"changed":true') && cli.output().includes('rules reloaded'), { what: `the reload logged: ${cli.output()}` });
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await database.drop();
    }
  });
});

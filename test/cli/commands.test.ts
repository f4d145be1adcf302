import fs from 'node:fs';
import path from 'node:path';
import { runCli } from '../support/cli';
import { tempDir, testEnv } from '../support/config';
import { createTestDatabase } from '../support/database';
import { startTestRedisServer } from '../support/redis-server';

const { version } = require('../../package.json') as { version: string };

describe('consentflow CLI', () => {
  it('prints its version and help', () => {
    expect(runCli(['--version'], {}).stdout.trim()).toBe(version);
    const help = runCli(['--help'], {});
    expect(help.status).toBe(0);
    for (const command of ['start', 'api', 'worker', 'migrate', 'keys']) expect(help.stdout).toContain(command);
  });

  it.each([
    [{ HTTP_PORT: 'abc' }, 'consentflow: invalid configuration: HTTP_PORT="abc": expected an integer between 0 and 65535 (0: any free port)'],
    [{ REDIS_URL: 'redis//nope' }, 'consentflow: invalid configuration: REDIS_URL: expected a redis:// or rediss:// URL'],
  ])('stops on %j with one clear line and no stack trace', (bad, line) => {
    const result = runCli(['start'], { ...testEnv(), ...bad });
    expect(result.status).toBe(78);
    expect(result.stderr).toBe(`${line}\n`);
    expect(result.stdout).toBe('');
  });

  it('refuses a Redis whose maxmemory-policy would evict jobs', async () => {
    const redis = await startTestRedisServer(['--maxmemory-policy', 'allkeys-lru']);
    try {
      const result = runCli(['start'], { ...testEnv({ REDIS_URL: redis.url }) });
      expect(result.status).toBe(1);
      expect(result.stderr).toBe(
        `consentflow: Redis at ${redis.url} has maxmemory-policy 'allkeys-lru'; consentflow needs 'noeviction' so queued jobs are never evicted. ` +
          'Set it with `redis-cli CONFIG SET maxmemory-policy noeviction` (and in redis.conf), then start again.\n',
      );
    } finally {
      await redis.stop();
    }
  });

  it('refuses to start with a rules file it cannot use, naming the file and the bad value', async () => {
    const rulesDir = tempDir('cf-rules');
    fs.writeFileSync(path.join(rulesDir, 'properties.yaml'), 'events:\n  "Order Completed":\n    allow: [order_id, 42]\n');
    const database = await createTestDatabase();
    try {
      const result = runCli(['start'], testEnv({ DATABASE_URL: database.url, RULES_DIR: rulesDir }));
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/^consentflow: the rules in .* have a problem \(`consentflow rules check` lists them\): .*properties\.yaml:3:23 expected string, received number\n$/);
    } finally {
      await database.drop();
    }
  });

  it('explains that api and worker processes need a shared PostgreSQL', () => {
    const result = runCli(['api'], testEnv());
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('`consentflow api` runs as a separate process and needs a shared PostgreSQL: set DATABASE_URL');
  });

  it('migrates an external PostgreSQL, once', async () => {
    const database = await createTestDatabase();
    try {
      const env = testEnv({ DATABASE_URL: database.url });
      const first = runCli(['migrate'], env);
      expect(first.stderr).toBe('');
      expect(first.stdout).toBe('applied 10 migration(s): app/0001_app_foundation, app/0002_ingestion, app/0003_consent, app/0004_rules, app/0005_email, app/0006_erasure, app/0007_retention, app/0008_access, vault/0001_vault, vault/0002_tombstones\n');
      expect(runCli(['migrate'], env).stdout).toBe('database is up to date\n');
    } finally {
      await database.drop();
    }
  });

  it('creates API keys on the embedded database and never lists the key itself', () => {
    const env = testEnv();
    const created = runCli(['keys', 'create', '--role', 'operator', '--name', 'ops on call', '--json'], env);
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    const key = JSON.parse(created.stdout) as { key: string; role: string; name: string; id: string };
    expect(key).toMatchObject({ role: 'operator', name: 'ops on call' });
    expect(key.key).toMatch(/^cfk_/);

    const listed = runCli(['keys', 'list', '--json'], env);
    expect(listed.status).toBe(0);
    expect(listed.stdout).not.toContain(key.key);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: key.id, role: 'operator' })]);

    const bad = runCli(['keys', 'create', '--role', 'root'], env);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe("consentflow: --role 'root': expected one of marketer, operator, privacy_officer, admin\n");

    // The embedded database keeps the audit log too, and its chain verifies.
    const verified = runCli(['audit', 'verify'], env);
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toMatch(/^audit log verified: 1 entries, head 1:[A-Za-z0-9_-]{43}\n/);
  });
});

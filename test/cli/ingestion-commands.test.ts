import { sql } from 'kysely';
import { runCli } from '../support/cli';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForEvents } from '../support/engine';
import { testKeysEnv } from '../support/config';
import { waitFor } from '../support/wait';
import { rulesLinkingByDefault } from '../support/rules';

describe('consentflow sources and subject commands', () => {
  let engine: TestEngine;
  // The CLI must read the vault with the engine's keys: both get the same key environment.
  const keys = testKeysEnv();
  beforeAll(async () => {
    engine = await startTestEngine({ ...keys, RULES_DIR: rulesLinkingByDefault() });
  });
  afterAll(async () => {
    await engine.stop();
  });
  const cliEnv = () => ({ ...keys, NODE_ENV: 'test', DATABASE_URL: engine.database.url, LOG_LEVEL: 'silent' });

  it('creates a source whose write key the API accepts at once, and lists it without the key', async () => {
    const created = runCli(['sources', 'add', 'www.example.com', '--json'], cliEnv());
    expect(created.stderr).toBe('');
    const source = JSON.parse(created.stdout) as { id: string; writeKey: string; name: string };
    expect(source).toMatchObject({ name: 'www.example.com' });
    const res = await postJson(`${engine.url}/v1/track`, { event: 'From new source', anonymousId: 'cli' }, { authorization: basicAuth(source.writeKey) });
    expect(res.status).toBe(200);
    const listed = runCli(['sources', 'list'], cliEnv());
    expect(listed.stdout).toContain('www.example.com');
    expect(listed.stdout).not.toContain(source.writeKey);
    expect(runCli(['sources', 'add', 'bad\nname'], cliEnv()).stderr).toBe('consentflow: NAME: control characters are not allowed\n');

    // A leaked key: revoked, it is refused by the running API within its cache time, without a restart.
    const revoked = runCli(['sources', 'revoke', source.id], cliEnv());
    expect(revoked.stdout).toBe(`revoked source ${source.id}: its write key is refused within 5 s; its data stays\n`);
    await waitFor(
      async () => (await postJson(`${engine.url}/v1/track`, { event: 'After revoke', anonymousId: 'cli' }, { authorization: basicAuth(source.writeKey) })).status === 401,
      { timeoutMs: 10_000, what: 'the revoked key refused' },
    );
    expect(runCli(['sources', 'list'], cliEnv()).stdout).not.toContain('www.example.com');
    const again = runCli(['sources', 'revoke', source.id], cliEnv());
    expect(again.status).toBe(1);
    expect(again.stderr).toBe(`consentflow: no active source has the id ${source.id}\n`);
    expect(runCli(['sources', 'revoke', 'nope'], cliEnv()).stderr).toContain("ID 'nope': expected a source id");
  });

  it('shows what is stored about a person, decrypted, and says so when nobody is known', async () => {
    await postJson(
      `${engine.url}/v1/identify`,
      { userId: 'cli-person', traits: { email: 'Anna.Nowak@Example.com', name: 'Anna Nowak', plan: 'team' } },
      { authorization: basicAuth(engine.writeKey) },
    );
    await waitForEvents(engine.services, 1, sql`type = 'identify'`);
    const shown = runCli(['subject', 'show', '--email', 'anna.nowak@example.com', '--reason', 'ticket 12'], cliEnv());
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/email\s+Anna\.Nowak@Example\.com/);
    expect(shown.stdout).toMatch(/name\s+Anna Nowak/);
    expect(shown.stdout).toMatch(/plan\s+"team"/);
    expect(shown.stdout).toMatch(/identify\s+1/);
    const json = JSON.parse(runCli(['subject', 'show', '--user-id', 'cli-person', '--reason', 'ticket 12', '--json'], cliEnv()).stdout) as { fields: unknown[] };
    expect(json.fields).toHaveLength(2);
    const unknown = runCli(['subject', 'show', '--email', 'nobody@example.com', '--reason', 'ticket 12'], cliEnv());
    expect(unknown.status).toBe(3);
    expect(unknown.stdout).toBe('no profile is known for that identifier\n');
    expect(runCli(['subject', 'show', '--reason', 'ticket 12'], cliEnv()).stderr).toBe('consentflow: give exactly one of --email, --user-id, --anonymous-id\n');
    // Each look-up is audited with its reason and the shell user, the person named by a keyed pseudonym only.
    const audited = await engine.services.databases.db.selectFrom('app.audit_log').selectAll().where('action', '=', 'subject.lookup').orderBy('seq').execute();
    expect(audited.map((a) => [a.outcome, a.reason, a.actor])).toEqual([
      ['ok', 'ticket 12', expect.stringMatching(/^cli:uid:\d+$/)],
      ['ok', 'ticket 12', expect.stringMatching(/^cli:uid:\d+$/)],
      ['not_found', 'ticket 12', expect.stringMatching(/^cli:uid:\d+$/)],
    ]);
    expect(audited[0]?.target).toMatch(/^subject:[A-Za-z0-9_-]{22}$/);
    expect(JSON.stringify(audited)).not.toMatch(/anna|nowak|cli-person/i);
  });
});

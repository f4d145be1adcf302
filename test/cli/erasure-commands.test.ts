import { createApiKey } from '../../engine/auth/api-keys';
import { findProfileId } from '../../engine/identity/lookup';
import { runCli, spawnCli } from '../support/cli';
import { testKeysEnv } from '../support/config';
import { basicAuth, postJson, startTestEngine, type TestEngine } from '../support/engine';
import { rulesLinkingByDefault } from '../support/rules';
import { waitFor } from '../support/wait';

describe('consentflow subject erase, erase-status and verify-erasure', () => {
  let engine: TestEngine;
  const keys = testKeysEnv();
  beforeAll(async () => {
    engine = await startTestEngine({ ...keys, RULES_DIR: rulesLinkingByDefault() }, ['events', 'erasure']);
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
  });
  const cliEnv = () => ({ ...keys, NODE_ENV: 'test', DATABASE_URL: engine.database.url, LOG_LEVEL: 'silent', QUEUE_PREFIX: engine.services.config.queuePrefix, RULES_DIR: rulesLinkingByDefault() });

  async function person(email: string, userId: string): Promise<string> {
    await postJson(`${engine.url}/v1/identify`, { userId, traits: { email, firstName: 'Erasmus' } }, { authorization: basicAuth(engine.writeKey) });
    return waitFor(async () => findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }]), { what: `${userId} stored` });
  }

  it('refuses without --yes or with a bad identifier, and changes nothing', async () => {
    await person('careful@example.com', 'careful');
    const refused = runCli(['subject', 'erase', '--email', 'careful@example.com'], cliEnv());
    expect(refused.status).toBe(1);
    expect(refused.stderr).toBe("consentflow: erasure cannot be undone: add --yes to confirm that this person's data is to be destroyed\n");
    expect(runCli(['subject', 'erase', '--yes'], cliEnv()).stderr).toBe('consentflow: give exactly one of --email, --user-id, --anonymous-id\n');
    expect(runCli(['subject', 'erase-status', 'nope'], cliEnv()).stderr).toContain("'nope' is not an erasure request id");
    expect(await engine.services.databases.db.selectFrom('app.erasure_requests').select('id').execute()).toEqual([]);
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'careful' }])).toBeDefined();
  });

  it('erases through the worker, prints the receipt, and verifies again by index and deeply', async () => {
    await person('erasmus@example.com', 'erasmus');
    // Async: the engine's erasure worker runs in this test process while the command waits.
    const cli = spawnCli(['subject', 'erase', '--email', 'erasmus@example.com', '--yes', '--wait', '60', '--json'], cliEnv());
    expect(await cli.exited).toBe(0);
    const status = JSON.parse(cli.output().trim().split('\n').pop() as string) as { id: string; state: string; receipt: { verification: { clean: boolean } } };
    expect(status).toMatchObject({ state: 'completed', receipt: { verification: { clean: true } } });
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'erasmus' }])).toBeUndefined();

    const shown = runCli(['subject', 'erase-status', status.id], cliEnv());
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain(`erasure ${status.id}: completed (step 8 of 8)`);
    expect(shown.stdout).toContain('signature valid');

    // Completed, the request has forgotten whom it was about: the identifier is given again.
    expect(runCli(['subject', 'verify-erasure', status.id], cliEnv()).stderr).toContain('give --email, --user-id or --anonymous-id to check again');
    const verified = runCli(['subject', 'verify-erasure', status.id, '--deep', '--email', 'erasmus@example.com', '--json'], cliEnv());
    expect(verified.status).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ clean: true, byIndex: { clean: true }, deep: { clean: true } });
  }, 90_000);

  it('a privacy officer erases through the admin API; other roles and bad bodies are refused', async () => {
    const db = engine.services.databases.db;
    const officer = (await createApiKey(db, { role: 'privacy_officer', name: 'dpo' })).key;
    const marketer = (await createApiKey(db, { role: 'marketer', name: 'marketing' })).key;
    const post = (body: unknown, key: string) => postJson(`${engine.url}/admin/v1/subjects/erase`, body, { authorization: `Bearer ${key}` });
    expect((await post({ email: 'x@example.com' }, marketer)).status).toBe(403);
    const bad = await post({ email: 'x@example.com', userId: 'both' }, officer);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('expected exactly one of email, userId, anonymousId');
    expect((await post({ email: 'not an address' }, officer)).status).toBe(400);
    expect((await post({ userId: 'u', extra: 1 }, officer)).status).toBe(400);
    const missing = await fetch(`${engine.url}/admin/v1/erasures/00000000-0000-4000-8000-000000000000`, { headers: { authorization: `Bearer ${officer}` } });
    expect(missing.status).toBe(404);
    expect((await fetch(`${engine.url}/admin/v1/erasures/nope`, { headers: { authorization: `Bearer ${officer}` } })).status).toBe(400);
    expect((await fetch(`${engine.url}/admin/v1/erasures/00000000-0000-4000-8000-000000000000`, { headers: { authorization: `Bearer ${marketer}` } })).status).toBe(403);
  });

  it('raises the overdue alert metric for a request past its deadline', async () => {
    const metric = async () => Number(/^consentflow_erasure_requests_overdue (\S+)$/m.exec(await (await fetch(`${engine.url}/metrics`)).text())?.[1]);
    expect(await metric()).toBe(0);
    await engine.services.databases.db
      .insertInto('app.erasure_requests')
      .values({ id: '00000000-0000-4000-8000-0000000000aa', requested_by: 'test', origin: 'cli', deadline_at: new Date(Date.now() - 1_000), identifier_kind: null, identifier_hash: null })
      .execute();
    expect(await metric()).toBe(1);
    await engine.services.databases.db.deleteFrom('app.erasure_requests').where('id', '=', '00000000-0000-4000-8000-0000000000aa').execute();
  });
});

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createApiKey } from '../../engine/auth/api-keys';
import { SubjectExport } from '../../schemas/subject-export';
import { BIN, runCli } from '../support/cli';
import { tempDir, testKeysEnv } from '../support/config';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForReceipts } from '../support/engine';
import { rulesLinkingByDefault } from '../support/rules';

describe('consentflow subject export', () => {
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

  it('writes the same document as the admin API to stdout, redirected to a file', async () => {
    const auth = { authorization: basicAuth(engine.writeKey) };
    await postJson(`${engine.url}/v1/identify`, { userId: 'cli-export', messageId: 'ce-identify', traits: { email: 'Jan.Kowalski@Example.com', name: 'Jan Kowalski', plan: 'team' } }, auth);
    await postJson(`${engine.url}/v1/track`, { userId: 'cli-export', messageId: 'ce-order', event: 'Order Completed', properties: { order_id: 'o-1', total: 12 } }, auth);
    await postJson(`${engine.url}/v1/identify`, { userId: 'cli-other', messageId: 'co-identify', traits: { email: 'someone.else@example.com' } }, auth);
    await waitForReceipts(engine.services, ['ce-identify', 'ce-order', 'co-identify']);

    // `consentflow subject export --email X --reason R > file.json`: stdout is the file.
    const file = path.join(tempDir('cf-export'), 'export.json');
    const fd = fs.openSync(file, 'w');
    const reason = 'ticket 4712';
    const run = spawnSync(process.execPath, [BIN, 'subject', 'export', '--email', 'jan.kowalski@example.com', '--reason', reason], {
      env: { PATH: process.env.PATH, ...cliEnv() },
      stdio: ['ignore', fd, 'pipe'],
      encoding: 'utf8',
      timeout: 60_000,
    });
    fs.closeSync(fd);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const fromCli = SubjectExport.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
    expect(fromCli.identity.fields.find((f) => f.field === 'email')?.value).toBe('Jan.Kowalski@Example.com');
    expect(fromCli.events.map((e) => e.messageId)).toEqual(['ce-identify', 'ce-order']);
    expect(fs.readFileSync(file, 'utf8')).not.toContain('someone.else');

    const officer = (await createApiKey(engine.services.databases.db, { role: 'privacy_officer' })).key;
    const res = await postJson(`${engine.url}/admin/v1/subjects/export`, { email: 'jan.kowalski@example.com', reason }, { authorization: `Bearer ${officer}` });
    expect(res.status).toBe(200);
    const fromApi = SubjectExport.parse(await res.json());
    expect({ ...fromCli, generatedAt: '' }).toEqual({ ...fromApi, generatedAt: '' });

    // The other identifiers lead to the same person.
    const byUserId = runCli(['subject', 'export', '--user-id', 'cli-export', '--reason', reason], cliEnv());
    expect(byUserId.status).toBe(0);
    expect({ ...SubjectExport.parse(JSON.parse(byUserId.stdout)), generatedAt: '', reason }).toEqual({ ...fromApi, generatedAt: '' });
  }, 90_000);

  it('says so on stderr when nobody is known, and names a bad option', () => {
    const unknown = runCli(['subject', 'export', '--email', 'nobody@example.com', '--reason', 'ticket 9'], cliEnv());
    expect(unknown.status).toBe(3);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe('consentflow: no profile is known for that identifier; nothing was exported\n');
    expect(runCli(['subject', 'export', '--email', 'a@example.com', '--anonymous-id', 'x', '--reason', 'ticket 9'], cliEnv()).stderr).toBe(
      'consentflow: give exactly one of --email, --user-id, --anonymous-id\n',
    );
    const bad = runCli(['subject', 'export', '--email', 'not-an-address', '--reason', 'ticket 9'], cliEnv());
    expect(bad.status).toBe(1);
    expect(bad.stderr).toBe('consentflow: --email: expected an email address\n');
    // The reason is required: it goes into the audit log with the decryption.
    const noReason = runCli(['subject', 'export', '--email', 'a@example.com'], cliEnv());
    expect(noReason.status).toBe(1);
    expect(noReason.stderr).toContain("required option '--reason <text>' not specified");
    const shortReason = runCli(['subject', 'export', '--email', 'a@example.com', '--reason', 'x'], cliEnv());
    expect(shortReason.stderr).toBe("consentflow: --reason: expected the reason for reading this person's data, at least 3 characters (e.g. a ticket number)\n");
  }, 60_000);
});

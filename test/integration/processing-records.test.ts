import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';
import { createApiKey } from '../../engine/auth/api-keys';
import { buildHttpServer } from '../../engine/http/server';
import { buildProcessingRecords } from '../../engine/reports/processing-records';
import { processingRecordsMarkdown } from '../../engine/reports/processing-records-md';
import { processingRecordsInput } from '../../engine/reports/records-input';
import { ProcessingRecords } from '../../schemas/processing-records';
import { listen } from '../support/http';
import { SHIPPED_RULES_DIR } from '../support/rules';
import { openTestServices, type TestServices } from '../support/services';

const purposes = (parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'purposes.yaml'), 'utf8')) as { purposes: Record<string, { retention: string }> }).purposes;

describe('GET /admin/v1/processing-records', () => {
  let env: TestServices;
  let app: FastifyInstance;
  let base: string;
  const keys: Record<string, string> = {};
  const secrets = ['relay-user', 'relay-P4ssw0rd', 'pool=true', 'api_key', 'webhook-secret-token'];

  beforeAll(async () => {
    env = await openTestServices({
      RULES_DIR: SHIPPED_RULES_DIR,
      SMTP_URL: 'smtp://relay-user:relay-P4ssw0rd@smtp.relay.example.com:587?pool=true',
      ERASURE_WEBHOOKS: 'https://erase.processor.example.com/hooks/erasure?api_key=webhook-secret-token',
    });
    app = await buildHttpServer(env.services);
    base = await listen(app);
    for (const role of ['privacy_officer', 'admin', 'marketer'] as const) keys[role] = (await createApiKey(env.services.databases.db, { role, name: `${role} test` })).key;
  });
  afterAll(async () => {
    await app.close();
    await env.close();
  });

  const get = (query: string, key: string | undefined) =>
    fetch(`${base}/admin/v1/processing-records${query}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  /** The records as the builder makes them from the same rules and configuration, less the time. */
  const expected = () => buildProcessingRecords(processingRecordsInput(env.services.config, env.services.rules, new Date(0)));

  it('answers a privacy officer (and an admin) the records as JSON: every purpose, retention and recipient, no credential', async () => {
    for (const role of ['privacy_officer', 'admin']) {
      const res = await get('', keys[role]);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await res.text();
      const records = ProcessingRecords.parse(JSON.parse(text));
      expect({ ...records, generatedAt: '' }).toEqual({ ...expected(), generatedAt: '' });
      for (const [name, entry] of Object.entries(purposes)) expect(records.purposes).toContainEqual(expect.objectContaining({ name, retention: entry.retention }));
      expect(records.recipients.map((r) => r.address)).toEqual(['smtp://smtp.relay.example.com:587', 'https://erase.processor.example.com']);
      for (const secret of secrets) expect(text).not.toContain(secret);
    }
  });

  it('answers Markdown with ?format=md, the same content as the CLI', async () => {
    const res = await get('?format=md', keys.privacy_officer);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/markdown/);
    const md = await res.text();
    const generated = /^Generated (\S+) /m.exec(md)?.[1] as string;
    expect(md).toBe(processingRecordsMarkdown({ ...expected(), generatedAt: generated }));
    for (const [name, entry] of Object.entries(purposes)) {
      expect(md).toContain(`### ${name}\n`);
      expect(md).toContain(entry.retention);
    }
    for (const secret of secrets) expect(md).not.toContain(secret);
  });

  it('refuses a marketer (403) and a format it does not know (400)', async () => {
    const forbidden = await get('', keys.marketer);
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
    const bad = await get('?format=xml', keys.privacy_officer);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: { code: 'VALIDATION_FAILED', message: 'format: expected md or json' } });
    expect((await get('', undefined)).status).toBe(401);
  });
});

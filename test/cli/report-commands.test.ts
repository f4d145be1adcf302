import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { parse } from 'yaml';
import { appendAudit } from '../../engine/audit/append';
import { createApiKey } from '../../engine/auth/api-keys';
import { type Keys, loadConfig, loadKeys } from '../../engine/config';
import type { Databases } from '../../engine/db/connect';
import { createLogger } from '../../engine/log/logger';
import { parseIncidentPeriod } from '../../engine/reports/incident-period';
import { openMigratedDatabases } from '../../engine/runtime/database-only';
import { IncidentReport } from '../../schemas/incident-report';
import { ProcessingRecords } from '../../schemas/processing-records';
import { runCli } from '../support/cli';
import { tempDir, testKeysEnv } from '../support/config';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { SHIPPED_RULES_DIR } from '../support/rules';
import { waitFor } from '../support/wait';

const purposes = (parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'purposes.yaml'), 'utf8')) as { purposes: Record<string, { retention: string }> }).purposes;

describe('consentflow report processing', () => {
  const env = {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATA_DIR: tempDir('cf-report'),
    RULES_DIR: SHIPPED_RULES_DIR,
    SMTP_URL: 'smtp://relay-user:relay-P4ssw0rd@smtp.relay.example.com:587?pool=true',
    ERASURE_WEBHOOKS: 'https://erase.processor.example.com/hooks/erasure?api_key=webhook-secret-token,https://crm.example.org/gdpr/forget',
  };
  // What the records must name (from the files, so the test follows them) and must never show.
  const recipients = ['smtp://smtp.relay.example.com:587', 'https://erase.processor.example.com', 'https://crm.example.org'];
  const secrets = ['relay-user', 'relay-P4ssw0rd', 'pool=true', 'api_key', 'webhook-secret-token'];

  it.each(['md', 'json'])('names every purpose, retention period and recipient, and no credential (--format %s)', (format) => {
    const result = runCli(['report', 'processing', '--format', format], env);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    for (const [name, entry] of Object.entries(purposes)) {
      expect(result.stdout).toContain(name);
      expect(result.stdout).toContain(entry.retention);
    }
    for (const recipient of recipients) expect(result.stdout).toContain(recipient);
    for (const secret of secrets) expect(result.stdout).not.toContain(secret);
    if (format === 'json') {
      const records = ProcessingRecords.parse(JSON.parse(result.stdout));
      expect(records.purposes.map((p) => [p.name, p.retention])).toEqual(Object.entries(purposes).map(([name, p]) => [name, p.retention]));
      expect(records.recipients.map((r) => r.address)).toEqual(recipients);
    } else {
      expect(result.stdout.startsWith('# Records of processing activities (GDPR Art. 30)\n')).toBe(true);
    }
  });

  it('is Markdown by default, says "outbox files (no relay)" without SMTP_URL, and refuses an unknown format', () => {
    const { SMTP_URL: _smtp, ERASURE_WEBHOOKS: _hooks, ...bare } = env;
    const result = runCli(['report', 'processing'], bare);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^# Records of processing activities/);
    expect(result.stdout).toContain('outbox files (no relay)');
    const bad = runCli(['report', 'processing', '--format', 'pdf'], bare);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toBe("consentflow: --format 'pdf': expected md or json\n");
  });
});

describe('consentflow report incident', () => {
  const keysEnv = testKeysEnv();
  let database: TestDatabase;
  let databases: Databases;
  let keys: Keys;
  let since: Date;
  let until: Date;
  const ids: Record<string, string> = {};
  const cliEnv = () => ({ ...keysEnv, NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: database.url, DATA_DIR: tempDir('cf-report') });
  const lastAt = async () => (await databases.db.selectFrom('app.audit_log').select('at').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow()).at;
  /** A moment strictly after the newest entry, once the clock has passed it: entries are stamped with the time of their append. */
  const momentAfterLast = async () => {
    const at = new Date((await lastAt()).getTime() + 1);
    await waitFor(async () => Date.now() > at.getTime(), { what: 'the clock to pass the last entry' });
    return at;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    const log = createLogger({ level: 'silent', fd: 2 });
    const config = loadConfig({ ...cliEnv() });
    keys = loadKeys(config, log);
    databases = (await openMigratedDatabases(config, log)).databases;
    const db = databases.db;
    const po = await createApiKey(db, { role: 'privacy_officer', name: 'dpo on call' });
    const marketer = await createApiKey(db, { role: 'marketer', name: 'campaign team' });
    ids.po = po.id;
    ids.marketer = marketer.id;
    // Before the period: must not be reported with --since.
    await appendAudit(db, keys, [{ actor: `key:${po.id}`, action: 'subject.export', target: 'subject:beforeBeforeBefore0000', outcome: 'ok', reason: 'ticket 1000', detail: { decrypted: true } }]);
    since = await momentAfterLast();
    await appendAudit(db, keys, [
      { actor: 'cli:uid:1000', action: 'keys.create', target: `key:${po.id}`, outcome: 'ok', detail: { role: 'privacy_officer' } },
      { actor: `key:${po.id}`, action: 'subject.lookup', target: 'subject:AAAAAAAAAAAAAAAAAAAAAA', outcome: 'ok', reason: 'ticket 4711', detail: { decrypted: true, method: 'POST' } },
      { actor: `key:${po.id}`, action: 'subject.export', target: 'subject:AAAAAAAAAAAAAAAAAAAAAA', outcome: 'ok', reason: 'ticket 4711', detail: { decrypted: true } },
      { actor: `key:${po.id}`, action: 'subject.export', target: 'subject:BBBBBBBBBBBBBBBBBBBBBB', outcome: 'ok', reason: 'letter of 2026-11-02', detail: { decrypted: true } },
      { actor: `key:${marketer.id}`, action: 'subject.export', outcome: 'denied', detail: { status: 403 } },
      { actor: `key:${marketer.id}`, action: 'audit.read', outcome: 'denied', detail: { status: 403 } },
      { actor: `key:${marketer.id}`, action: 'subject.export', outcome: 'denied', detail: { status: 403 } },
      { actor: `key:${po.id}`, action: 'subject.erase', target: 'erasure:0b7f3c2e-8d4a-4f51-9a43-2f1d6c9e0a11', outcome: 'ok' },
      { actor: 'cli:uid:1000', action: 'keys.revoke', target: `key:${marketer.id}`, outcome: 'ok' },
      { actor: 'worker:erasure', action: 'erasure.status', target: 'erasure:0b7f3c2e-8d4a-4f51-9a43-2f1d6c9e0a11', outcome: 'ok' },
    ]);
    until = await momentAfterLast();
  }, 60_000);
  afterAll(async () => {
    await databases?.close();
    await database?.drop();
  });

  const incident = (args: string[]) => runCli(['report', 'incident', ...args], cliEnv());
  const period = () => ['--since', since.toISOString(), '--until', until.toISOString()];

  it('lists decryptions, denied attempts, key changes, erasures, exports and actors of the period, as JSON', async () => {
    const result = incident([...period(), '--format', 'json']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const report = IncidentReport.parse(JSON.parse(result.stdout));
    expect(report.period).toEqual({ since: since.toISOString(), until: until.toISOString() });
    expect(report.totals.entries).toBe(10);
    expect(report.totals.byOutcome).toEqual({ ok: 7, denied: 3 });
    expect(report.totals.byAction[0]).toEqual({ action: 'subject.export', total: 4, outcomes: { ok: 2, denied: 2 } });
    expect(report.decryptions.map((d) => [d.actor, d.action, d.target, d.reason])).toEqual([
      [`key:${ids.po}`, 'subject.lookup', 'subject:AAAAAAAAAAAAAAAAAAAAAA', 'ticket 4711'],
      [`key:${ids.po}`, 'subject.export', 'subject:AAAAAAAAAAAAAAAAAAAAAA', 'ticket 4711'],
      [`key:${ids.po}`, 'subject.export', 'subject:BBBBBBBBBBBBBBBBBBBBBB', 'letter of 2026-11-02'],
    ]);
    for (const d of report.decryptions) expect(new Date(d.at) >= since && new Date(d.at) < until).toBe(true);
    expect(report.subjectsDecrypted).toBe(2);
    expect(report.denied).toEqual([
      { actor: `key:${ids.marketer}`, count: 3, actions: ['audit.read', 'subject.export'], first: expect.any(String), last: expect.any(String) },
    ]);
    expect(report.keyChanges.map((k) => [k.action, k.target])).toEqual([
      ['keys.create', `key:${ids.po}`],
      ['keys.revoke', `key:${ids.marketer}`],
    ]);
    expect(report.erasures.map((e) => e.target)).toEqual(['erasure:0b7f3c2e-8d4a-4f51-9a43-2f1d6c9e0a11']);
    expect(report.exports.map((e) => [e.actor, e.outcome])).toEqual([
      [`key:${ids.po}`, 'ok'],
      [`key:${ids.po}`, 'ok'],
      [`key:${ids.marketer}`, 'denied'],
      [`key:${ids.marketer}`, 'denied'],
    ]);
    const actors = Object.fromEntries(report.actors.map((a) => [a.actor, a]));
    expect(actors[`key:${ids.po}`]).toMatchObject({ key: { id: ids.po, name: 'dpo on call', role: 'privacy_officer', revokedAt: null }, entries: 4, decryptions: 3, denied: 0 });
    expect(actors[`key:${ids.marketer}`]).toMatchObject({ key: { name: 'campaign team', role: 'marketer' }, entries: 3, denied: 3 });
    expect(actors['cli:uid:1000']).toMatchObject({ key: null, entries: 2 });
    expect(actors['worker:erasure']).toMatchObject({ key: null, entries: 1 });
    expect(report.chain).toEqual({ ok: true, entries: expect.any(Number), problems: [] });
    // The report was itself recorded, after the period it covers.
    const read = await databases.db.selectFrom('app.audit_log').selectAll().where('action', '=', 'audit.read').where('outcome', '=', 'ok').execute();
    expect(read).toEqual([expect.objectContaining({ actor: expect.stringMatching(/^cli:uid:/), detail: { report: 'incident', since: since.toISOString(), until: until.toISOString() } })]);
  });

  it('prints Markdown by default, with the chain line, and takes relative times', () => {
    const md = incident(period());
    expect(md.status).toBe(0);
    expect(md.stdout).toMatch(/^# Incident report: access in the audit log\n/);
    expect(md.stdout).toContain('**Audit chain: verifies**');
    for (const heading of ['## Totals', '## Decryptions of personal data (3)', '## Denied attempts, by actor (1)', '## API keys created and revoked (2)', '## Erasures (1)', '## Exports (4)', '## Actors active (4)']) {
      expect(md.stdout).toContain(heading);
    }
    expect(md.stdout).toContain('ticket 4711');
    expect(md.stdout).toContain('dpo on call');
    expect(md.stdout).not.toContain('ticket 1000');

    // 72 hours back reaches the entry before the period too.
    const wide = IncidentReport.parse(JSON.parse(incident(['--since', '72h', '--format', 'json']).stdout));
    expect(wide.decryptions.map((d) => d.reason)).toContain('ticket 1000');
    expect(new Date(wide.period.until).getTime() - new Date(wide.period.since).getTime()).toBe(72 * 3_600_000);
  });

  it.each([
    [['--since', 'yesterday'], "consentflow: --since 'yesterday': expected an ISO 8601 date-time with a time zone (e.g. 2026-11-29T10:00:00Z, or a date such as 2026-11-29) or a time before now (e.g. 72h, 7d; units m, h, d, w)\n"],
    [['--since', '72'], "consentflow: --since '72': expected an ISO 8601 date-time with a time zone (e.g. 2026-11-29T10:00:00Z, or a date such as 2026-11-29) or a time before now (e.g. 72h, 7d; units m, h, d, w)\n"],
    [['--since', '7d', '--until', 'soon'], "consentflow: --until 'soon': expected an ISO 8601 date-time with a time zone (e.g. 2026-11-29T10:00:00Z, or a date such as 2026-11-29) or a time before now (e.g. 72h, 7d; units m, h, d, w)\n"],
    [['--since', '24h', '--until', '48h'], expect.stringMatching(/^consentflow: --until '48h': expected a time after --since \(.*\)\n$/)],
    [[], expect.stringMatching(/^consentflow: --since is required: expected an ISO 8601 date-time/)],
    [['--since', '7d', '--format', 'html'], "consentflow: --format 'html': expected md or json\n"],
  ])('refuses %j with a line naming the option and what is allowed', (args, message) => {
    const result = incident(args);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toEqual(message);
  });

  it('parses ISO 8601 and relative times against the given now', () => {
    const now = new Date('2026-11-29T12:00:00Z');
    expect(parseIncidentPeriod({ since: '72h' }, now)).toEqual({ since: new Date('2026-11-26T12:00:00Z'), until: now });
    expect(parseIncidentPeriod({ since: '2026-11-01', until: '2026-11-02T00:00:00+01:00' }, now)).toEqual({
      since: new Date('2026-11-01T00:00:00Z'),
      until: new Date('2026-11-01T23:00:00Z'),
    });
    expect(parseIncidentPeriod({ since: '2w', until: '30m' }, now).until).toEqual(new Date('2026-11-29T11:30:00Z'));
    expect(() => parseIncidentPeriod({ since: '2026-12-01T00:00:00Z' }, now)).toThrow("--since '2026-12-01T00:00:00Z': expected a time in the past");
    expect(() => parseIncidentPeriod({ since: '2026-11-29T10:00:00' }, now)).toThrow(/expected an ISO 8601 date-time with a time zone/);
  });

  // Last: it breaks the chain for good.
  it('says so when the audit chain does not verify', async () => {
    await sql`alter table app.audit_log disable trigger audit_log_no_change`.execute(databases.db);
    await sql`update app.audit_log set reason = 'edited afterwards' where reason = 'ticket 1000'`.execute(databases.db);
    await sql`alter table app.audit_log enable trigger audit_log_no_change`.execute(databases.db);
    const md = incident(period());
    expect(md.status).toBe(0);
    expect(md.stdout).toContain('**Audit chain: DOES NOT VERIFY**');
    expect(md.stdout).toMatch(/- entry 1: its content does not match its hash/);
    expect(md.stderr).toBe('consentflow: the audit chain does not verify (1 problem(s)); the report may be incomplete\n');
    const json = IncidentReport.parse(JSON.parse(incident([...period(), '--format', 'json']).stdout));
    expect(json.chain).toMatchObject({ ok: false, problems: [{ seq: '1', message: expect.stringContaining('does not match its hash') }] });
  });
});

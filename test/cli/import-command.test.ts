import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../../engine/db/types';
import { identityKey } from '../../engine/identity/keys';
import { findProfileId } from '../../engine/identity/lookup';
import { describeSubject } from '../../engine/identity/subject';
import type { ImportReport } from '../../engine/import/report';
import { BIN, type CliResult, runCli, spawnCli } from '../support/cli';
import { tempDir, testKeysEnv } from '../support/config';
import { dumpAppSchema, startTestEngine, type TestEngine } from '../support/engine';

/** The built command, run without blocking this process (the engine under test keeps working meanwhile). */
function runCliAsync(args: string[], env: Record<string, string | undefined>): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr })));
}

/** Every table an imported person can reach: a dry run must leave each count as it was. */
const TABLES = [
  'app.sources', 'app.profiles', 'app.event_receipts', 'app.event_rejections', 'app.events', 'app.event_counts', 'app.consent_ledger',
  'app.decisions', 'app.segment_state', 'app.enrolments', 'app.outbox', 'app.audit_log',
  'vault.identities', 'vault.subject_fields', 'vault.subject_keys',
];
async function tableCounts(db: Kysely<Database>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) out[table] = Number((await sql<{ n: string }>`select count(*)::text as n from ${sql.table(table)}`.execute(db)).rows[0]?.n);
  return out;
}

interface Expected {
  readonly csv: string;
  readonly invalid: Array<[number, string | null]>;
  readonly erased: number[];
  readonly suppressed: number[];
  readonly duplicates: number[];
  readonly erasedEmails: string[];
  readonly accepted: number;
}

/** 10,000 people, some invalid (by line, past a row spanning two lines), some erased, one hard bounce, one repeated row. */
function bigFile(): Expected {
  const out: string[] = ['email,userId,firstName,plan,country'];
  const invalid: Array<[number, string | null]> = [];
  const erased: number[] = [];
  const suppressed: number[] = [];
  const duplicates: number[] = [];
  const erasedEmails: string[] = [];
  let line = 2;
  let previous = '';
  for (let i = 0; i < 10_000; i++) {
    let row = `person${i}@example.com,p-${i},"Name ${i}",${i % 3 === 0 ? 'pro' : 'free'},PL`;
    if (i === 100) [row] = [`not-an-address,p-${i},N,pro,PL`, invalid.push([line, 'email'])];
    else if (i === 2000) [row] = [`person${i}@example.com,p-${i},"Ann\tTab",pro,PL`, invalid.push([line, 'firstName'])];
    else if (i === 3000) [row] = [`person${i}@example.com,p-${i},N,pro,PL,extra`, invalid.push([line, null])];
    else if (i === 4000) [row] = [',,Nobody,pro,PL', invalid.push([line, 'email'])];
    else if (i === 5000) [row] = [`person${i}@example.com,p-${i},"Multi\r\nLine",pro,PL`, invalid.push([line, 'firstName'])];
    else if (i === 6000) [row] = [previous, duplicates.push(line)];
    else if (i === 9999) [row] = [`person${i}@example.com,p-${i},Na"me,pro,PL`, invalid.push([line, null])];
    else if (i === 7) suppressed.push(line);
    else if (i > 0 && i <= 210 && i % 10 === 0) [row] = [row, erased.push(line), erasedEmails.push(`person${i}@example.com`)];
    out.push(row);
    previous = row;
    line += 1 + (row.match(/\r\n/g)?.length ?? 0);
  }
  const accepted = 10_000 - invalid.length - erased.length - suppressed.length - duplicates.length;
  return { csv: `${out.join('\r\n')}\r\n`, invalid, erased, suppressed, duplicates, erasedEmails, accepted };
}

describe('consentflow import', () => {
  let engine: TestEngine;
  const keys = testKeysEnv();
  const dir = tempDir('cf-import');
  beforeAll(async () => {
    engine = await startTestEngine({ ...keys }, ['events', 'erasure']);
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const cliEnv = () => ({ ...keys, NODE_ENV: 'test', DATABASE_URL: engine.database.url, LOG_LEVEL: 'silent', QUEUE_PREFIX: engine.services.config.queuePrefix });
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  const reportOf = (result: CliResult) => JSON.parse(result.stdout) as ImportReport;

  it('imports 10,000 rows: the valid land with source import:NAME, the erased are skipped, the invalid named by line; --dry-run writes nothing; again, no one twice', async () => {
    const { db } = engine.services.databases;
    const expected = bigFile();
    const csv = file('people.csv', expected.csv);
    // People erased before: their addresses' keyed hashes on the suppression list, as the erasure worker leaves them.
    const hashOf = (email: string) => identityKey(engine.services.keys.pseudonym, 'email', email).hash;
    await db.insertInto('app.suppressions').values(expected.erasedEmails.map((e) => ({ hash: hashOf(e), reason: 'erased' as const, detail: null }))).execute();
    await db.insertInto('app.suppressions').values({ hash: hashOf('person7@example.com'), reason: 'hard_bounce', detail: 'test' }).execute();
    const args = ['import', csv, '--source', 'crm-2026', '--consent', 'analytics,profiling:cookie_banner@1', '--json'];
    const checkReport = (report: ImportReport) => {
      expect(report.rows).toBe(10_000);
      expect(report.accepted).toBe(expected.accepted);
      expect(report.invalid.map((r) => [r.line, r.column ?? null])).toEqual(expected.invalid);
      const skipped = (reason: string) => report.skipped.filter((s) => s.reason === reason).map((s) => s.line);
      expect(skipped('erased')).toEqual(expected.erased);
      expect(report.skipped.filter((s) => s.reason === 'suppressed')).toEqual(expected.suppressed.map((line) => ({ line, reason: 'suppressed', detail: 'hard_bounce' })));
      expect(skipped('duplicate_row')).toEqual(expected.duplicates);
      expect(report.skipped).toHaveLength(expected.erased.length + expected.suppressed.length + expected.duplicates.length);
      // The report names lines, never what they hold.
      expect(JSON.stringify(report)).not.toMatch(/person\d+@|Name \d/);
    };

    const before = await tableCounts(db);
    const dry = await runCliAsync([...args, '--dry-run'], cliEnv());
    expect([dry.status, dry.stderr]).toEqual([2, '']);
    expect(reportOf(dry)).toMatchObject({ dryRun: true, newPeople: null, source: { name: 'import:crm-2026', id: null } });
    checkReport(reportOf(dry));
    expect(await tableCounts(db)).toEqual(before);

    const real = await runCliAsync(args, cliEnv());
    expect([real.status, real.stderr]).toEqual([2, '']);
    const report = reportOf(real);
    checkReport(report);
    expect(report).toMatchObject({ dryRun: false, newPeople: expected.accepted, source: { name: 'import:crm-2026', created: true } });
    // Seconds, not minutes, on a shared 2-core machine (the figure is in the report).
    expect(report.durationMs).toBeLessThan(90_000);
    const source = await db.selectFrom('app.sources').select(['id', 'revoked_at']).where('name', '=', 'import:crm-2026').execute();
    expect(source).toEqual([{ id: report.source.id, revoked_at: expect.any(Date) }]);
    const sourceId = report.source.id as string;
    const count = async (query: Promise<{ n: string }>) => Number((await query).n);
    expect(await count(db.selectFrom('app.profiles').select((eb) => eb.fn.countAll<string>().as('n')).where('source_id', '=', sourceId).executeTakeFirstOrThrow())).toBe(expected.accepted);
    const vault = engine.services.databases.vaultDb;
    expect(await count(vault.selectFrom('vault.subject_fields').select((eb) => eb.fn.countAll<string>().as('n')).where('source_id', '=', sourceId).where('field', '=', 'email').executeTakeFirstOrThrow())).toBe(expected.accepted);
    const ledger = await db.selectFrom('app.consent_ledger').select(['purpose', 'method', 'source_kind', 'notice_id', 'notice_version', 'decision']).where('source_id', '=', sourceId).groupBy(['purpose', 'method', 'source_kind', 'notice_id', 'notice_version', 'decision']).select((eb) => eb.fn.countAll<string>().as('n')).orderBy('purpose').execute();
    expect(ledger).toEqual(['analytics', 'profiling'].map((purpose) => ({ purpose, method: 'import', source_kind: 'import', notice_id: 'cookie_banner', notice_version: 1, decision: 'granted', n: String(expected.accepted) })));
    for (const email of [...expected.erasedEmails, 'person7@example.com', 'not-an-address']) {
      expect([email, await findProfileId(vault, engine.services.keys, [{ email }])]).toEqual([email, undefined]);
    }
    const person = await describeSubject(engine.services.databases, engine.services.keys, { userId: 'p-42' });
    expect(person?.fields.map((f) => [f.field, f.value, f.sourceId])).toEqual([['email', 'person42@example.com', sourceId], ['firstName', 'Name 42', sourceId]]);
    expect(person?.traits).toMatchObject({ plan: { v: 'pro', src: sourceId }, country: { v: 'PL', src: sourceId } });
    // Each batch is audited in its own transaction, naming the source, never a person.
    const audit = await db.selectFrom('app.audit_log').select(['actor', 'target', 'outcome', 'detail']).where('action', '=', 'subject.import').execute();
    expect(audit.length).toBe(Math.ceil((10_000 - expected.invalid.length - expected.duplicates.length) / 1_000));
    expect(audit.every((a) => a.target === `source:${sourceId}` && /^cli:uid:\d+$/.test(a.actor) && a.outcome === 'ok')).toBe(true);
    expect(audit.reduce((sum, a) => sum + (a.detail as { rows: number }).rows, 0)).toBe(expected.accepted);

    // The same file again: the same people, no one added twice, nothing new in the ledger.
    const afterFirst = await tableCounts(db);
    const again = await runCliAsync(args.filter((a) => a !== '--json'), cliEnv());
    expect(again.status).toBe(2);
    expect(again.stdout).toContain(`rows: 10,000 read, 0 accepted, ${(expected.accepted + expected.erased.length + 2).toLocaleString('en-US')} skipped, 6 invalid`);
    expect(again.stdout).toContain(`already imported: the same row, from this source, with the same consent: ${expected.accepted.toLocaleString('en-US')} (lines 2, 3, 4,`);
    expect(again.stdout).toContain(`  line ${expected.invalid[0]?.[0]}, email: expected one plain email address local@domain`);
    expect(await tableCounts(db)).toEqual(afterFirst);
  }, 300_000);

  it('keeps an erased person out: imported, erased by the erasure worker, then skipped when the file comes again, changed or not', async () => {
    const first = file('small.csv', 'email,firstName,plan\r\nerin@example.org,Erin,pro\r\nfrank@example.org,Frank,free\r\n');
    const imported = await runCliAsync(['import', first, '--source', 'fair', '--json'], cliEnv());
    expect(imported.status).toBe(0);
    expect(reportOf(imported)).toMatchObject({ accepted: 2, newPeople: 2, skipped: [], invalid: [] });
    // The erasure worker runs in this test process while the command waits for it.
    const erase = spawnCli(['subject', 'erase', '--email', 'erin@example.org', '--yes', '--wait', '60', '--json'], cliEnv());
    expect(await erase.exited).toBe(0);
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ email: 'erin@example.org' }])).toBeUndefined();

    const changed = file('small-2.csv', 'email,firstName,plan\r\nerin@example.org,Erin,team\r\nfrank@example.org,Frank,free\r\n');
    for (const csv of [first, changed]) {
      const again = await runCliAsync(['import', csv, '--source', 'fair', '--json'], cliEnv());
      expect(again.status).toBe(0);
      expect(reportOf(again)).toMatchObject({
        accepted: 0,
        skipped: [
          { line: 2, reason: 'erased' },
          { line: 3, reason: 'already_imported' },
        ],
      });
    }
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ email: 'erin@example.org' }])).toBeUndefined();
  }, 120_000);

  it('writes each batch whole or not at all: stopped in its second batch, it leaves the first and no part of the second; run again, it finishes', async () => {
    const { db, vaultDb } = engine.services.databases;
    const rows = Array.from({ length: 2_500 }, (_, i) => `batch${i}@example.net,Batch ${i}`);
    const csv = file('batches.csv', `email,firstName\n${rows.join('\n')}\n`);
    // The second batch (lines 1002-2001) cannot be audited, so it cannot be written: a failure in the middle of its transaction.
    await sql`alter table app.audit_log add constraint test_refuse_second_batch check (action <> 'subject.import' or detail->>'lines' not like '1002-%') not valid`.execute(db);
    let stopped: CliResult;
    try {
      stopped = await runCliAsync(['import', csv, '--source', 'batches', '--json'], cliEnv());
    } finally {
      await sql`alter table app.audit_log drop constraint test_refuse_second_batch`.execute(db);
    }
    expect(stopped.status).toBe(1);
    expect(stopped.stderr).toContain('run the same command again, rows already imported are recognized');
    const partial = reportOf(stopped);
    expect(partial).toMatchObject({ accepted: 1_000, interrupted: expect.stringContaining('the batch was not written') });
    const sourceId = partial.source.id as string;
    const people = async () => Number((await db.selectFrom('app.profiles').select((eb) => eb.fn.countAll<string>().as('n')).where('source_id', '=', sourceId).executeTakeFirstOrThrow()).n);
    const fields = async () => Number((await vaultDb.selectFrom('vault.subject_fields').select((eb) => eb.fn.countAll<string>().as('n')).where('source_id', '=', sourceId).executeTakeFirstOrThrow()).n);
    expect([await people(), await fields()]).toEqual([1_000, 2_000]);
    expect(await findProfileId(vaultDb, engine.services.keys, [{ email: 'batch1000@example.net' }])).toBeUndefined();

    const resumed = await runCliAsync(['import', csv, '--source', 'batches', '--json'], cliEnv());
    expect(resumed.status).toBe(0);
    expect(reportOf(resumed)).toMatchObject({ accepted: 1_500, newPeople: 1_500 });
    expect(reportOf(resumed).skipped.filter((s) => s.reason === 'already_imported')).toHaveLength(1_000);
    expect([await people(), await fields()]).toEqual([2_500, 5_000]);
    // Invariant 1: what identifies them is only in the vault.
    const appText = await dumpAppSchema(db);
    expect(appText).not.toMatch(/batch\d+@example\.net|Batch \d/);
  }, 120_000);

  it('refuses a file it cannot import as a whole, and bad options, writing nothing', async () => {
    const { db } = engine.services.databases;
    const before = await tableCounts(db);
    const unknown = runCli(['import', file('unknown.csv', 'email,favouriteColour\na@example.com,red\n'), '--source', 'bad'], cliEnv());
    expect(unknown.status).toBe(65);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('column "favouriteColour" is neither an identifier (email, userId) nor a trait rules/properties.yaml keeps');
    expect(runCli(['import', file('empty.csv', ''), '--source', 'bad'], cliEnv()).status).toBe(65);
    const missing = runCli(['import', path.join(dir, 'nope.csv'), '--source', 'bad'], cliEnv());
    expect([missing.status, missing.stderr]).toEqual([66, `consentflow: cannot read ${path.join(dir, 'nope.csv')}: no such file; nothing was imported\n`]);
    const valid = file('valid.csv', 'email\na@example.com\n');
    const optIn = runCli(['import', valid, '--source', 'bad', '--consent', 'email_marketing:newsletter_form@1'], cliEnv());
    expect(optIn.status).toBe(1);
    expect(optIn.stderr).toContain('email_marketing is granted only by double opt-in');
    expect(runCli(['import', valid, '--source', ' '], cliEnv()).stderr).toContain('--source: expected 1 to 93 characters');
    expect(runCli(['import', valid], cliEnv()).stderr).toContain("required option '--source <name>' not specified");
    expect(await tableCounts(db)).toEqual(before);
  });
});

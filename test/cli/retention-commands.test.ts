import { sql } from 'kysely';
import { EventPartitions } from '../../engine/events/partitions';
import { findProfileId } from '../../engine/identity/lookup';
import { monthsBefore } from '../../engine/privacy/retention/policy';
import type { RetentionPlan } from '../../engine/privacy/retention/plan';
import { runCli } from '../support/cli';
import { testKeysEnv } from '../support/config';
import { basicAuth, postJson, startTestEngine, type TestEngine, waitForReceipts } from '../support/engine';
import { TEST_REDIS_URL } from '../support/env';
import { rulesLinkingByDefault } from '../support/rules';

describe('consentflow retention plan and run', () => {
  let engine: TestEngine;
  const keys = testKeysEnv();
  const rulesDir = rulesLinkingByDefault();
  const now = new Date();
  const threeYears = monthsBefore(now, 36);
  const oldPartition = `events_${threeYears.getUTCFullYear()}_${String(threeYears.getUTCMonth() + 1).padStart(2, '0')}`;
  let idle = '';
  let active = '';

  beforeAll(async () => {
    engine = await startTestEngine({ ...keys, RULES_DIR: rulesDir }, ['events']);
    const auth = { authorization: basicAuth(engine.writeKey) };
    for (const userId of ['cli-idle', 'cli-active']) {
      expect((await postJson(`${engine.url}/v1/identify`, { userId, messageId: `id-${userId}`, traits: { email: `${userId}@example.org` } }, auth)).status).toBe(200);
    }
    await waitForReceipts(engine.services, ['id-cli-idle', 'id-cli-active']);
    const { db, vaultDb } = engine.services.databases;
    idle = (await findProfileId(vaultDb, engine.services.keys, [{ userId: 'cli-idle' }])) as string;
    active = (await findProfileId(vaultDb, engine.services.keys, [{ userId: 'cli-active' }])) as string;
    await sql`update app.profiles set last_seen_at = ${monthsBefore(now, 30)} where id = ${idle}`.execute(db);
    await new EventPartitions(db).ensure([threeYears]);
    for (const n of [1, 2]) {
      await sql`insert into app.events (profile_id, source_id, message_id, type, name, occurred_at, received_at, properties, context)
        values (${active}, ${engine.sourceId}, ${`old-${n}`}, 'track', 'Article Read', ${threeYears}, ${threeYears}, '{}', '{}')`.execute(db);
    }
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
  });

  const cliEnv = (extra: Record<string, string> = {}) => ({
    ...keys,
    NODE_ENV: 'test',
    DATABASE_URL: engine.database.url,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: engine.services.config.queuePrefix,
    LOG_LEVEL: 'silent',
    RULES_DIR: rulesDir,
    ...extra,
  });

  it('`retention plan --json` lists the old partition and counts the inactive profile, with their rules, and no ids', () => {
    const result = runCli(['retention', 'plan', '--json'], cliEnv());
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const plan = JSON.parse(result.stdout) as RetentionPlan;
    expect(plan.events.partitions).toEqual([{ name: oldPartition, from: expect.any(String), to: expect.any(String), rows: 2, estimated: false }]);
    expect(plan.events.rule).toContain('RETENTION_EVENTS_MONTHS=13');
    expect(plan.inactiveProfiles).toEqual({ rule: expect.stringContaining('RETENTION_INACTIVE_PROFILE_MONTHS=24'), profiles: 1, thisRun: 1 });
    expect(plan.kept.find((k) => k.data === 'consent ledger')?.rule).toContain('while the profile exists');
    expect(result.stdout).not.toContain(idle);
    expect(result.stdout).not.toContain(active);

    const text = runCli(['retention', 'plan'], cliEnv());
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(`app.${oldPartition}`);
    expect(text.stdout).toContain('inactive profiles: 1 (1 at the next run, RETENTION_BATCH_SIZE=1000)');
    expect(text.stdout).toContain('consent ledger: the proof of consent');
    expect(text.stdout).not.toContain(idle);
  }, 60_000);

  it('refuses a bad retention setting with one line naming it (exit 78)', () => {
    const result = runCli(['retention', 'plan'], cliEnv({ RETENTION_EVENTS_MONTHS: '0' }));
    expect(result.status).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('consentflow: invalid configuration: RETENTION_EVENTS_MONTHS="0": expected a whole number of months from 1 to 1200\n');
  });

  it('`retention run` drops the partition and puts the inactive profile up for erasure, once', async () => {
    const result = runCli(['retention', 'run', '--json'], cliEnv());
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ partitionsDropped: [oldPartition], eventRowsDropped: 2, erasuresRequested: 1 });
    const requests = await engine.services.databases.db.selectFrom('app.erasure_requests').select(['id', 'origin']).execute();
    expect(requests).toEqual([{ id: expect.any(String), origin: 'retention' }]);
    expect(await engine.services.queues.queue('erasure').getJob(`erase-${requests[0]?.id}`)).toBeDefined();

    const again = runCli(['retention', 'run'], cliEnv());
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('0 event partition(s) dropped (0 rows)');
    expect(again.stdout).toContain('0 inactive profile(s) put up for erasure');
    expect(again.stdout).toContain('1 inactive profile(s) already being erased');
  }, 60_000);
});

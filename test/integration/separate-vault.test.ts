import { sql } from 'kysely';
import { describeSubject } from '../../engine/identity/subject';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { basicAuth, countEvents, postJson, startTestEngine, type TestEngine, waitForEvents } from '../support/engine';
import { waitFor } from '../support/wait';
import { rulesLinkingByDefault } from '../support/rules';

/** VAULT_DATABASE_URL: the vault in a database of its own, so the two commit separately. */
describe('ingestion with the vault in its own database', () => {
  let vault: TestDatabase;
  let engine: TestEngine;
  beforeAll(async () => {
    vault = await createTestDatabase();
    engine = await startTestEngine({ VAULT_DATABASE_URL: vault.url, RULES_DIR: rulesLinkingByDefault() });
  });
  afterAll(async () => {
    await engine.stop();
    await vault.drop();
  });

  it('keeps the vault tables out of the main database and still merges an anonymous visitor into the known person', async () => {
    const auth = { authorization: basicAuth(engine.writeKey) };
    await postJson(`${engine.url}/v1/page`, { anonymousId: 'sv-visitor', name: 'Landing' }, auth);
    await waitForEvents(engine.services, 1, sql`name = 'Landing'`);
    await postJson(`${engine.url}/v1/identify`, { userId: 'sv-user', traits: { email: 'sv@example.com' } }, auth);
    await waitForEvents(engine.services, 1, sql`type = 'identify'`);
    await postJson(`${engine.url}/v1/alias`, { userId: 'sv-user', previousId: 'sv-visitor' }, auth);
    await waitFor(
      async () => (await countEvents(engine.services, sql`profile_id = (select profile_id from app.events where type = 'identify')`)) === 3,
      { what: 'page view moved to the known profile' },
    );
    const mainTables = await sql<{ n: string }>`select count(*)::text as n from information_schema.tables where table_schema = 'vault'`.execute(
      engine.services.databases.db,
    );
    expect(mainTables.rows[0]?.n).toBe('0');
    const subject = await describeSubject(engine.services.databases, engine.services.keys, { anonymousId: 'sv-visitor' });
    expect(subject?.fields.map((f) => f.value)).toEqual(['sv@example.com']);
    expect(subject?.events).toEqual([
      { type: 'alias', count: 1 },
      { type: 'identify', count: 1 },
      { type: 'page', count: 1 },
    ]);
    const pending = await engine.services.databases.vaultDb
      .selectFrom('vault.profile_merges')
      .select('loser_id')
      .where('applied_at', 'is', null)
      .execute();
    expect(pending).toEqual([]);
    expect(await engine.services.databases.db.selectFrom('app.profiles').select('id').execute()).toHaveLength(1);
  });
});

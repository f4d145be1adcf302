import { type Kysely, sql } from 'kysely';
import { findProfileId } from '../../engine/identity/lookup';
import { createErasureRequest } from '../../engine/privacy/erasure/request';
import { runErasure } from '../../engine/privacy/erasure/run-erasure';
import { tablesHolding, traceOf } from '../support/erasure';
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

  it('erases a person across both databases, verified by index and by the deep scan', async () => {
    const auth = { authorization: basicAuth(engine.writeKey) };
    await postJson(`${engine.url}/v1/identify`, { userId: 'sv-erased', anonymousId: 'sv-erased-anon', traits: { email: 'sv.erased@example.com' } }, auth);
    await waitFor(async () => findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'sv-erased' }]), { what: 'the person stored' });
    const trace = await traceOf(engine.services, { email: 'sv.erased@example.com', userId: 'sv-erased', anonymousId: 'sv-erased-anon' });
    const request = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, {
      identifier: { email: 'sv.erased@example.com' },
      origin: 'cli',
      requestedBy: 'test',
      deep: true,
    });
    if (!request.ok) throw new Error(request.error);
    const outcome = await runErasure(engine.services, request.id);
    if (outcome.outcome !== 'completed') throw new Error(outcome.outcome);
    expect(outcome.receipt).toMatchObject({ profilesErased: 1, dataKeysDestroyed: 1, verification: { clean: true, deep: { clean: true } } });
    for (const db of [engine.services.databases.db, engine.services.databases.vaultDb]) {
      const left = await tablesHolding(db as unknown as Kysely<unknown>, ['app', 'vault'], trace.needles);
      expect([...left.keys()].filter((t) => t !== 'app.suppressions' && t !== 'vault.erasure_tombstones')).toEqual([]);
    }
    // The other person of this file is untouched.
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'sv-user' }])).toBeDefined();
  });
});

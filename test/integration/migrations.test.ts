import { sql } from 'kysely';
import { openDatabases } from '../../engine/db/connect';
import { migrateToLatest } from '../../engine/db/migrate';
import { capturingLogger } from '../support/log-capture';
import { testConfig } from '../support/config';
import { createTestDatabase, type TestDatabase } from '../support/database';

describe('migrations on PostgreSQL', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it('create schemas app and vault, apply each migration once, even when two processes race', async () => {
    const config = testConfig({ DATABASE_URL: database.url });
    const { log } = capturingLogger();
    const [a, b] = await Promise.all([openDatabases(config, log), openDatabases(config, log)]);
    try {
      const [appliedA, appliedB] = await Promise.all([
        migrateToLatest(a.db, a.vaultDb, log),
        migrateToLatest(b.db, b.vaultDb, log),
      ]);
      // One of the two applied each migration, the other found it done.
      expect([...appliedA, ...appliedB].sort()).toEqual(['app/0001_app_foundation', 'app/0002_ingestion', 'app/0003_consent', 'app/0004_rules', 'app/0005_email', 'app/0006_erasure', 'app/0007_retention', 'app/0008_access', 'vault/0001_vault', 'vault/0002_tombstones']);
      const schemas = await sql<{ nspname: string }>`select nspname from pg_namespace where nspname in ('app', 'vault') order by 1`.execute(a.db);
      expect(schemas.rows.map((r) => r.nspname)).toEqual(['app', 'vault']);
      const applied = await sql<{ name: string }>`select name from app.schema_migrations`.execute(a.db);
      expect(applied.rows.map((r) => r.name)).toEqual(['0001_app_foundation', '0002_ingestion', '0003_consent', '0004_rules', '0005_email', '0006_erasure', '0007_retention', '0008_access']);
      expect(await migrateToLatest(a.db, a.vaultDb, log)).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

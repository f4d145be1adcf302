import { type Kysely, Migrator, type MigrationProvider, type MigrationResultSet, sql } from 'kysely';
import type { Logger } from '../log/logger';
import { appMigrationProvider, vaultMigrationProvider } from './migrations';

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

async function migrateSchema(
  db: Kysely<any>,
  schema: 'app' | 'vault',
  provider: MigrationProvider,
  log: Logger,
): Promise<string[]> {
  // Two processes starting at once would race on `create schema`; serialize them like the migrations.
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`consentflow:schema:${schema}`}))`.execute(trx);
    await sql`create schema if not exists ${sql.id(schema)}`.execute(trx);
  });
  // Kysely's PostgreSQL adapter takes pg_advisory_xact_lock for the whole run, so two processes
  // starting at once apply each migration exactly once.
  const migrator = new Migrator({
    db,
    provider,
    migrationTableSchema: schema,
    migrationTableName: 'schema_migrations',
    migrationLockTableName: 'schema_migrations_lock',
  });
  const { error, results }: MigrationResultSet = await migrator.migrateToLatest();
  const applied = (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  const failed = (results ?? []).find((r) => r.status === 'Error');
  if (error) {
    throw new MigrationError(
      `migration ${failed ? `${schema}/${failed.migrationName} ` : ''}failed: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (applied.length > 0) log.info({ schema, applied }, 'migrations applied');
  return applied.map((name) => `${schema}/${name}`);
}

/** Brings both schemas up to date; `vaultDb` may be the same database as `db`. Returns what it applied. */
export async function migrateToLatest(db: Kysely<any>, vaultDb: Kysely<any>, log: Logger): Promise<string[]> {
  const app = await migrateSchema(db, 'app', appMigrationProvider, log);
  const vault = await migrateSchema(vaultDb, 'vault', vaultMigrationProvider, log);
  return [...app, ...vault];
}

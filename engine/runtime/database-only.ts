import type { Config } from '../config';
import { type Databases, openDatabases } from '../db/connect';
import { migrateToLatest } from '../db/migrate';
import type { Logger } from '../log/logger';

/** For commands that need PostgreSQL but not Redis (migrate, keys): open, migrate, hand back. */
export async function openMigratedDatabases(config: Config, log: Logger): Promise<{ databases: Databases; applied: string[] }> {
  const databases = await openDatabases(config, log, 'consentflow-cli');
  try {
    const applied = await migrateToLatest(databases.db, databases.vaultDb, log);
    return { databases, applied };
  } catch (err) {
    await databases.close();
    throw err;
  }
}

/** Runs `fn` with migrated databases and closes them whatever happens. */
export async function withMigratedDatabases<T>(config: Config, log: Logger, fn: (databases: Databases) => Promise<T>): Promise<T> {
  const { databases } = await openMigratedDatabases(config, log);
  try {
    return await fn(databases);
  } finally {
    await databases.close();
  }
}

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

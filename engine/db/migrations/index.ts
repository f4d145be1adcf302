import type { Migration, MigrationProvider } from 'kysely';
import * as app0001 from './app/0001_app_foundation';
import * as app0002 from './app/0002_ingestion';
import * as app0003 from './app/0003_consent';
import * as app0004 from './app/0004_rules';
import * as app0005 from './app/0005_email';
import * as app0006 from './app/0006_erasure';
import * as app0007 from './app/0007_retention';
import * as app0008 from './app/0008_access';
import * as vault0001 from './vault/0001_vault';
import * as vault0002 from './vault/0002_tombstones';

/**
 * Migrations are listed here rather than read from a folder, so the same set runs from the compiled
 * build, from tests and from embedded PGlite. Names sort in order of application.
 */
const appMigrations: Record<string, Migration> = {
  '0001_app_foundation': app0001,
  '0002_ingestion': app0002,
  '0003_consent': app0003,
  '0004_rules': app0004,
  '0005_email': app0005,
  '0006_erasure': app0006,
  '0007_retention': app0007,
  '0008_access': app0008,
};

const vaultMigrations: Record<string, Migration> = {
  '0001_vault': vault0001,
  '0002_tombstones': vault0002,
};

export const appMigrationProvider: MigrationProvider = { getMigrations: async () => appMigrations };
export const vaultMigrationProvider: MigrationProvider = { getMigrations: async () => vaultMigrations };

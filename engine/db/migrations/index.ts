import type { Migration, MigrationProvider } from 'kysely';
import * as app0001 from './app/0001_app_foundation';

/**
 * Migrations are listed here rather than read from a folder, so the same set runs from the compiled
 * build, from tests and from embedded PGlite. Names sort in order of application.
 */
const appMigrations: Record<string, Migration> = {
  '0001_app_foundation': app0001,
};

// The vault's schema is created by `ensureSchema`; its tables arrive with the vault itself.
const vaultMigrations: Record<string, Migration> = {};

export const appMigrationProvider: MigrationProvider = { getMigrations: async () => appMigrations };
export const vaultMigrationProvider: MigrationProvider = { getMigrations: async () => vaultMigrations };

import path from 'node:path';
import { type Dialect, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Config } from '../config';
import type { Logger } from '../log/logger';
import { lockEmbeddedDirectory } from './embedded-lock';
import type { Database, VaultDatabase } from './types';

export interface Databases {
  readonly db: Kysely<Database>;
  /** The vault; the same connection pool as `db` unless VAULT_DATABASE_URL is set. */
  readonly vaultDb: Kysely<VaultDatabase>;
  readonly embedded: boolean;
  /** A cheap round trip, for readiness checks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

function pgPool(url: string, size: number, applicationName: string, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: size,
    application_name: applicationName,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (PostgreSQL restarted) must not crash the process; the pool
  // replaces it on next use.
  pool.on('error', (err) => log.warn({ err }, 'idle PostgreSQL connection lost'));
  // A client checked out of the pool (a transaction between two statements, a batch awaiting Redis)
  // that loses its connection emits 'error' on the client itself: pg-pool takes its own listener off
  // while the client is out, and an 'error' event nobody listens to ends the process. A PostgreSQL
  // restart (SQLSTATE 57P01, "terminating connection due to administrator command") killed both
  // events workers this way (test/faults/postgres-restart.fault.ts). With a listener, the next
  // statement on that client fails instead (it is no longer queryable), its transaction rolls back,
  // the job retries with backoff, and the pool drops the client when it is released.
  pool.on('connect', (client) => {
    client.on('error', (err) => log.warn({ err }, 'PostgreSQL connection lost while in use'));
  });
  return pool;
}

async function openEmbedded(config: Config, log: Logger): Promise<Databases> {
  const dir = path.join(config.dataDir, 'pgdata');
  const unlock = lockEmbeddedDirectory(config.dataDir);
  try {
    // Loaded only on this path: PGlite is a WASM build that an external-PostgreSQL deployment never needs.
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGliteDialect } = await import('kysely-pglite-dialect');
    // bytea comes back as a Buffer, as it does from pg: code compares and hex-encodes hashes, and a
    // plain Uint8Array's toString ignores the encoding (the bug this prevents made every identity
    // look new on the embedded database).
    const BYTEA = 17;
    const pglite = await PGlite.create(dir, {
      parsers: { [BYTEA]: (value: string) => Buffer.from(value.startsWith('\\x') ? value.slice(2) : value, 'hex') },
    });
    // The dialect is typed against kysely's ESM build; this project loads the CJS one (same runtime API).
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pglite) as unknown as Dialect });
    log.info({ dir }, 'embedded PostgreSQL (PGlite) opened');
    return {
      db,
      vaultDb: db as unknown as Kysely<VaultDatabase>,
      embedded: true,
      ping: async () => {
        await sql`select 1`.execute(db);
      },
      close: async () => {
        await db.destroy();
        if (!pglite.closed) await pglite.close();
        unlock();
      },
    };
  } catch (err) {
    unlock();
    throw err;
  }
}

export async function openDatabases(config: Config, log: Logger, applicationName = 'consentflow'): Promise<Databases> {
  const { url, vaultUrl, poolSize } = config.database;
  if (url === undefined) return openEmbedded(config, log);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: pgPool(url, poolSize, applicationName, log) }) });
  const vaultDb =
    vaultUrl === undefined
      ? (db as unknown as Kysely<VaultDatabase>)
      : new Kysely<VaultDatabase>({
          dialect: new PostgresDialect({ pool: pgPool(vaultUrl, Math.max(2, Math.ceil(poolSize / 2)), `${applicationName}-vault`, log) }),
        });
  return {
    db,
    vaultDb,
    embedded: false,
    ping: async () => {
      await sql`select 1`.execute(db);
      if (vaultDb !== (db as unknown)) await sql`select 1`.execute(vaultDb);
    },
    close: async () => {
      if (vaultDb !== (db as unknown)) await vaultDb.destroy();
      await db.destroy();
    },
  };
}

import type { ColumnType, Generated, Insertable, Kysely, Selectable, Transaction } from 'kysely';

/**
 * Table types of schema `app`: pseudonymous data only (DESIGN.md, "Stores"). Keep in step with the
 * migrations under ./migrations/app.
 */
export interface ApiKeysTable {
  id: Generated<string>;
  name: string;
  role: 'marketer' | 'operator' | 'privacy_officer' | 'admin';
  /** SHA-256 of the whole key; the key itself is shown once and never stored. */
  key_hash: Buffer;
  /** The first characters of the key, so people can tell keys apart in listings. */
  key_prefix: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface Database {
  'app.api_keys': ApiKeysTable;
}

/** Table types of schema `vault` (filled by the ingestion issue). */
export interface VaultDatabase {}

export type Db = Kysely<Database>;
/** What repositories take: the pool or a caller's transaction. */
export type DbOrTrx = Kysely<Database> | Transaction<Database>;

export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;

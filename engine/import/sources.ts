import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import type { Db, DbOrTrx } from '../db/types';

/**
 * The sources of people the engine itself takes in: `admin` (typed in through the admin API) and
 * `import:NAME` (a file imported by `consentflow import --source NAME`). Every datum carries its
 * source (DESIGN.md invariant 3), so each gets a row in app.sources, like the email tracking source
 * of migration 0005: a random write key hash nobody holds (no key can ever authenticate as it), the
 * prefix `(none)` that marks the row as the engine's own, and `revoked_at` set, so it is never
 * listed nor accepted by the tracking API. Found again by name: importing twice under one name
 * uses one source.
 */

export const ADMIN_SOURCE = 'admin';
const OWN_PREFIX = '(none)';
const IMPORT_PREFIX = 'import:';

/** NAME of `--source NAME`: the source's name is `import:NAME`, at most 100 characters. */
export const ImportSourceName = z
  .string()
  .trim()
  .min(1, `expected 1 to ${100 - IMPORT_PREFIX.length} characters`)
  .max(100 - IMPORT_PREFIX.length, `expected 1 to ${100 - IMPORT_PREFIX.length} characters`)
  .regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed')
  .transform((name) => `${IMPORT_PREFIX}${name}`);

export interface OwnSource {
  readonly id: string;
  readonly name: string;
  readonly created: boolean;
}

/** The engine's own source of this name, if it exists (a dry run creates nothing). */
export async function findOwnSource(db: DbOrTrx, name: string): Promise<OwnSource | undefined> {
  const row = await db
    .selectFrom('app.sources')
    .select('id')
    .where('name', '=', name)
    .where('write_key_prefix', '=', OWN_PREFIX)
    .orderBy('created_at')
    .limit(1)
    .executeTakeFirst();
  return row ? { id: row.id, name, created: false } : undefined;
}

/** Finds or creates the engine's own source of this name; two imports starting at once get one row. */
export async function ownSource(db: Db, name: string): Promise<OwnSource> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`consentflow:own-source:${name}`}))`.execute(trx);
    const existing = await findOwnSource(trx, name);
    if (existing) return existing;
    const row = await trx
      .insertInto('app.sources')
      .values({ name, write_key_hash: randomBytes(32), write_key_prefix: OWN_PREFIX, revoked_at: new Date() })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: row.id, name, created: true };
  });
}

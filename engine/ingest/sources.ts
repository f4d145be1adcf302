import { createHash, randomBytes } from 'node:crypto';
import type { DbOrTrx } from '../db/types';

export interface Source {
  readonly id: string;
  readonly name: string;
  readonly writeKeyPrefix: string;
  readonly createdAt: string;
}

const WRITE_KEY_PREFIX = 'wk_';

/**
 * Write keys are public in a web page, so they authenticate a source rather than a person; still,
 * only their hash is stored, so a database dump does not hand out the right to send as a source.
 */
export function hashWriteKey(writeKey: string): Buffer {
  return createHash('sha256').update(writeKey, 'utf8').digest();
}

export async function createSource(db: DbOrTrx, name: string): Promise<Source & { writeKey: string }> {
  const writeKey = `${WRITE_KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
  const row = await db
    .insertInto('app.sources')
    .values({ name, write_key_hash: hashWriteKey(writeKey), write_key_prefix: writeKey.slice(0, 10) })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { id: row.id, name: row.name, writeKeyPrefix: row.write_key_prefix, createdAt: row.created_at.toISOString(), writeKey };
}

export async function findSourceIdByWriteKey(db: DbOrTrx, writeKey: string): Promise<string | undefined> {
  if (writeKey.length === 0 || writeKey.length > 200) return undefined;
  const row = await db
    .selectFrom('app.sources')
    .select('id')
    .where('write_key_hash', '=', hashWriteKey(writeKey))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row?.id;
}

export async function listSources(db: DbOrTrx): Promise<Source[]> {
  const rows = await db.selectFrom('app.sources').selectAll().where('revoked_at', 'is', null).orderBy('created_at').execute();
  return rows.map((row) => ({ id: row.id, name: row.name, writeKeyPrefix: row.write_key_prefix, createdAt: row.created_at.toISOString() }));
}

/**
 * Revokes a source: its write key stops being accepted (within the API's cache time, 5 s). Its
 * data stays, attributed to it. Returns false when no active source has that id.
 */
export async function revokeSource(db: DbOrTrx, id: string): Promise<boolean> {
  const result = await db
    .updateTable('app.sources')
    .set({ revoked_at: new Date() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

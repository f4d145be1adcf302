import { sql } from 'kysely';
import type { DbOrTrx } from './types';

/**
 * Locks profile rows in id order, as a batch does when it upserts them: the first lock of every path
 * that acts on a person (a batch, the rules tick, a consent change), so they never act on one person
 * at once and never deadlock on each other.
 */
export async function lockProfileRows(db: DbOrTrx, profileIds: readonly string[]): Promise<void> {
  if (profileIds.length === 0) return;
  await sql`select id from app.profiles where id = any(${[...new Set(profileIds)]}::uuid[]) order by id for update`.execute(db);
}

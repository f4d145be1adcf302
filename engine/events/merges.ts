import { sql, type Transaction } from 'kysely';
import type { Databases } from '../db/connect';
import type { Database, VaultDbOrTrx } from '../db/types';
import type { Resolution } from '../identity/resolve';
import { applyProfileMerges } from './app-writes';

/**
 * Profile merges across the two commits of a separate vault database: the locks that keep a merge
 * from racing a concurrent batch, the mark that a merge reached schema `app`, and the sweeper for
 * merges a crash left half applied.
 */

export function touchedProfiles(resolution: Resolution): string[] {
  const ids = new Set<string>();
  for (const id of resolution.profileIds) if (id) ids.add(id);
  for (const m of resolution.merges) ids.add(m.loser).add(m.winner);
  return [...ids];
}

/** Transaction-scoped advisory locks on profiles, in one order (the first 64 bits of the uuid). */
export async function lockProfiles(app: Transaction<Database>, profileIds: readonly string[]): Promise<void> {
  if (profileIds.length === 0) return;
  const numbers = [...new Set(profileIds.map((id) => BigInt.asIntN(64, BigInt(`0x${id.replace(/-/g, '').slice(0, 16)}`)).toString()))].sort();
  await sql`select pg_advisory_xact_lock(n) from (select unnest(${numbers}::bigint[]) as n order by 1) as ordered`.execute(app);
}

/**
 * Merges the vault recorded but the app side never applied (a crash between the two commits, with a
 * separate vault database). Cheap when there are none: a partial index holds only pending rows.
 */
export async function applyPendingMerges(databases: Databases, olderThanMs = 60_000): Promise<number> {
  const pending = await databases.vaultDb
    .selectFrom('vault.profile_merges')
    .select(['loser_id', 'winner_id'])
    .where('applied_at', 'is', null)
    .where('merged_at', '<', new Date(Date.now() - olderThanMs))
    .orderBy('merged_at')
    .limit(500)
    .execute();
  if (pending.length === 0) return 0;
  await databases.db.transaction().execute(async (app) => {
    await lockProfiles(app, pending.flatMap((m) => [m.loser_id, m.winner_id]));
    await applyProfileMerges(app, pending.map((m) => ({ loser: m.loser_id, winner: m.winner_id })));
  });
  await markMergesApplied(databases.vaultDb, pending.map((m) => m.loser_id));
  return pending.length;
}

export async function markMergesApplied(vault: VaultDbOrTrx, loserIds: readonly string[]): Promise<void> {
  if (loserIds.length === 0) return;
  await vault.updateTable('vault.profile_merges').set({ applied_at: new Date() }).where('loser_id', 'in', loserIds).execute();
}


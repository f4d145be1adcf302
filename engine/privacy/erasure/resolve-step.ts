import { sql } from 'kysely';
import type { Keys } from '../../config';
import type { IdentityKind, VaultDbOrTrx } from '../../db/types';
import { type IdentityKey, lockNumber } from '../../identity/keys';
import { lockSubjectKeys, readFields } from '../../vault/fields';
import type { ErasureWork } from './work';

/**
 * Step 1: every profile of the person, every identifier the vault holds for them, and a tombstone
 * for each identifier so that events still queued, or sent later, are dropped instead of becoming a
 * new profile (engine/identity/resolve.ts reads them). The same advisory locks a batch takes on its
 * identifiers are taken first, then the data keys FOR UPDATE: a batch resolving this person either
 * committed before, or sees the tombstones.
 */

export interface ResolvedSubject {
  readonly profileIds: string[];
  readonly identities: ErasureWork['identities'];
  readonly vaultCounts: Record<string, number>;
  /** The address read from the vault (for processors' webhooks and the deep scan), if any. */
  readonly email: string | undefined;
}

const keyOf = (kind: IdentityKind, hash: Buffer): IdentityKey => ({ kind, hash, id: `${kind}:${hash.toString('hex')}` });

async function profilesAndIdentities(vault: VaultDbOrTrx, asked: IdentityKey) {
  const found = await vault.selectFrom('vault.identities').select('profile_id').where('kind', '=', asked.kind).where('hash', '=', asked.hash).executeTakeFirst();
  const profiles = new Set<string>(found ? [found.profile_id] : []);
  // Anonymous profiles merged into this one (a merge still pending on the app side included).
  for (let frontier = [...profiles]; frontier.length > 0; ) {
    const losers = await vault.selectFrom('vault.profile_merges').select('loser_id').where('winner_id', 'in', frontier).execute();
    frontier = losers.map((l) => l.loser_id).filter((id) => !profiles.has(id));
    for (const id of frontier) profiles.add(id);
  }
  const identities =
    profiles.size === 0
      ? []
      : await vault.selectFrom('vault.identities').select(['kind', 'hash']).where('profile_id', 'in', [...profiles]).execute();
  const keys = new Map<string, IdentityKey>([[asked.id, asked]]);
  for (const i of identities) {
    const k = keyOf(i.kind, i.hash);
    keys.set(k.id, k);
  }
  return { profiles: [...profiles].sort(), keys: [...keys.values()], identityRows: identities.length };
}

export async function resolveAndTombstone(vault: VaultDbOrTrx, keys: Keys, asked: IdentityKey, requestId: string, tombstoneDays: number): Promise<ResolvedSubject> {
  // Read, lock in the one global order, read again: a batch that merged in between is caught.
  let seen = await profilesAndIdentities(vault, asked);
  for (let round = 0; ; round++) {
    const locks = [...new Set(seen.keys.map((k) => lockNumber(k).toString()))].sort();
    await sql`select pg_advisory_xact_lock(n) from (select unnest(${locks}::bigint[]) as n order by 1) as ordered`.execute(vault);
    const again = await profilesAndIdentities(vault, asked);
    const same = again.profiles.join() === seen.profiles.join() && again.keys.every((k) => seen.keys.some((s) => s.id === k.id));
    seen = again;
    if (same || round >= 5) break;
  }
  const subjectKeys = await lockSubjectKeys(vault, keys.master, seen.profiles);
  let email: string | undefined;
  let fieldCount = 0;
  for (const key of subjectKeys.values()) {
    const fields = await readFields(vault, key);
    fieldCount += fields.length;
    email ??= fields.find((f) => f.field === 'email')?.value;
  }
  const expiresAt = new Date(Date.now() + tombstoneDays * 86_400_000);
  await vault
    .insertInto('vault.erasure_tombstones')
    .values(seen.keys.map((k) => ({ kind: k.kind, hash: k.hash, request_id: requestId, expires_at: expiresAt })))
    .onConflict((oc) => oc.columns(['kind', 'hash']).doUpdateSet({ request_id: requestId, expires_at: expiresAt }))
    .execute();
  return {
    profileIds: seen.profiles,
    identities: seen.keys.map((k) => ({ kind: k.kind, hash: k.hash.toString('hex') })),
    vaultCounts: { vault_data_keys: subjectKeys.size, vault_fields: fieldCount, vault_identities: seen.identityRows },
    email,
  };
}

/** Step 2: crypto-shredding. The data key goes (every encrypted copy, in backups too, is unreadable); the rows with it. */
export async function shredVault(vault: VaultDbOrTrx, keys: Keys, profileIds: readonly string[]): Promise<void> {
  if (profileIds.length === 0) return;
  await lockSubjectKeys(vault, keys.master, profileIds);
  // identities and subject_fields go with their key (on delete cascade); the merges that named them too.
  await vault.deleteFrom('vault.subject_keys').where('profile_id', 'in', profileIds).execute();
  await vault.deleteFrom('vault.identities').where('profile_id', 'in', profileIds).execute();
  await vault.deleteFrom('vault.profile_merges').where((eb) => eb.or([eb('loser_id', 'in', profileIds), eb('winner_id', 'in', profileIds)])).execute();
}

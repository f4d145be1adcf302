import { sql } from 'kysely';
import type { Keys } from '../../config';
import type { IdentityKind, VaultDbOrTrx } from '../../db/types';
import { type IdentityKey, lockNumber } from '../../identity/keys';
import { fieldsOverview, lockSubjectKeys } from '../../vault/fields';
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

/** What one request resolves to: its profiles (sorted), its identifiers, and the vault's identity rows a profile. */
interface Seen {
  readonly profiles: string[];
  readonly keys: IdentityKey[];
  readonly identityRows: ReadonlyMap<string, number>;
}

/**
 * Every profile and identifier of each asked identifier, in three statements whatever their number:
 * the profiles holding the asked identifiers, the anonymous profiles merged into them (one statement
 * a level of merges), and every identifier of all those profiles.
 */
async function profilesAndIdentities(vault: VaultDbOrTrx, asked: readonly IdentityKey[]): Promise<Seen[]> {
  const found = await sql<{ kind: IdentityKind; hash: Buffer; profile_id: string }>`
    select i.kind, i.hash, i.profile_id from vault.identities i
    join unnest(${asked.map((a) => a.kind)}::text[], ${asked.map((a) => a.hash)}::bytea[]) as a(kind, hash) on i.kind = a.kind and i.hash = a.hash`.execute(vault);
  const profileOf = new Map(found.rows.map((r) => [`${r.kind}:${r.hash.toString('hex')}`, r.profile_id]));
  // Anonymous profiles merged into these (a merge still pending on the app side included).
  const losersOf = new Map<string, string[]>();
  const known = new Set(profileOf.values());
  for (let frontier = [...known]; frontier.length > 0; ) {
    const merges = await vault.selectFrom('vault.profile_merges').select(['winner_id', 'loser_id']).where('winner_id', 'in', frontier).execute();
    frontier = [];
    for (const m of merges) {
      losersOf.set(m.winner_id, [...(losersOf.get(m.winner_id) ?? []), m.loser_id]);
      if (!known.has(m.loser_id)) {
        known.add(m.loser_id);
        frontier.push(m.loser_id);
      }
    }
  }
  const rows = known.size === 0 ? [] : await vault.selectFrom('vault.identities').select(['profile_id', 'kind', 'hash']).where('profile_id', 'in', [...known]).execute();
  const identitiesOf = new Map<string, IdentityKey[]>();
  for (const r of rows) identitiesOf.set(r.profile_id, [...(identitiesOf.get(r.profile_id) ?? []), keyOf(r.kind, r.hash)]);
  return asked.map((a) => {
    const profiles = new Set<string>();
    const start = profileOf.get(a.id);
    for (let frontier = start ? [start] : []; frontier.length > 0; ) {
      for (const id of frontier) profiles.add(id);
      frontier = frontier.flatMap((id) => losersOf.get(id) ?? []).filter((id) => !profiles.has(id));
    }
    const keys = new Map<string, IdentityKey>([[a.id, a]]);
    const identityRows = new Map<string, number>();
    for (const p of profiles) {
      for (const k of identitiesOf.get(p) ?? []) keys.set(k.id, k);
      identityRows.set(p, identitiesOf.get(p)?.length ?? 0);
    }
    return { profiles: [...profiles].sort(), keys: [...keys.values()], identityRows };
  });
}

const sameAs = (a: Seen, b: Seen) => a.profiles.join() === b.profiles.join() && a.keys.length === b.keys.length && a.keys.every((k) => b.keys.some((s) => s.id === k.id));

export interface AskedSubject {
  readonly requestId: string;
  readonly key: IdentityKey;
}

export async function resolveAndTombstone(vault: VaultDbOrTrx, keys: Keys, asked: IdentityKey, requestId: string, tombstoneDays: number): Promise<ResolvedSubject> {
  const [one] = await resolveAndTombstoneMany(vault, keys, [{ requestId, key: asked }], tombstoneDays);
  return one as ResolvedSubject;
}

/**
 * Step 1 for several requests at once (grouped erasures), in as many statements as for one; the
 * results are in the order asked. Two requests naming the same person each get the whole person.
 */
export async function resolveAndTombstoneMany(vault: VaultDbOrTrx, keys: Keys, asked: readonly AskedSubject[], tombstoneDays: number): Promise<ResolvedSubject[]> {
  if (asked.length === 0) return [];
  const askedKeys = asked.map((a) => a.key);
  // Read, lock in the one global order, read again: a batch that merged in between is caught.
  let seen = await profilesAndIdentities(vault, askedKeys);
  for (let round = 0; ; round++) {
    const locks = [...new Set(seen.flatMap((s) => s.keys.map((k) => lockNumber(k).toString())))].sort();
    await sql`select pg_advisory_xact_lock(n) from (select unnest(${locks}::bigint[]) as n order by 1) as ordered`.execute(vault);
    const again = await profilesAndIdentities(vault, askedKeys);
    const same = again.every((s, i) => sameAs(s, seen[i] as Seen));
    seen = again;
    if (same || round >= 5) break;
  }
  const allProfiles = [...new Set(seen.flatMap((s) => s.profiles))];
  const subjectKeys = await lockSubjectKeys(vault, keys.master, allProfiles);
  const fields = await fieldsOverview(vault, subjectKeys, 'email');
  const expiresAt = new Date(Date.now() + tombstoneDays * 86_400_000);
  // One row per identifier: two requests for one person name the same ones (the first request is recorded).
  const tombstones = new Map<string, { kind: IdentityKind; hash: Buffer; request_id: string; expires_at: Date }>();
  asked.forEach((a, i) => {
    for (const k of (seen[i] as Seen).keys) if (!tombstones.has(k.id)) tombstones.set(k.id, { kind: k.kind, hash: k.hash, request_id: a.requestId, expires_at: expiresAt });
  });
  await vault
    .insertInto('vault.erasure_tombstones')
    .values([...tombstones.values()])
    .onConflict((oc) => oc.columns(['kind', 'hash']).doUpdateSet({ request_id: sql`excluded.request_id`, expires_at: sql`excluded.expires_at` }))
    .execute();
  // A profile two requests resolve to is the first one's: the later one erases nothing of it again
  // and counts nothing of it, as if the two had run one after the other.
  const claimed = new Set<string>();
  return seen.map((s) => {
    const own = s.profiles.filter((p) => !claimed.has(p));
    for (const p of own) claimed.add(p);
    return { ...s, profiles: own };
  }).map((s) => ({
    profileIds: s.profiles,
    identities: s.keys.map((k) => ({ kind: k.kind, hash: k.hash.toString('hex') })),
    vaultCounts: {
      vault_data_keys: s.profiles.filter((p) => subjectKeys.has(p)).length,
      vault_fields: s.profiles.reduce((n, p) => n + (fields.counts.get(p) ?? 0), 0),
      vault_identities: s.profiles.reduce((n, p) => n + (s.identityRows.get(p) ?? 0), 0),
    },
    email: s.profiles.map((p) => fields.values.get(p)).find((v) => v !== undefined),
  }));
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

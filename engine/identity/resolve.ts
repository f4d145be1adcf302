import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { VaultDbOrTrx } from '../db/types';
import { lockSubjectKeys, mergeVaultSubject, newSubjectKeyRow, type SubjectKey } from '../vault/fields';
import { type IdentityKey, lockNumber } from './keys';

export interface EventIdentity {
  readonly keys: readonly IdentityKey[];
  readonly lookupOnly: readonly IdentityKey[];
  readonly attachIfUnknown?: IdentityKey;
  readonly sourceId: string;
}

export interface Resolution {
  /** The profile of each event, in input order (null: the event carried no usable identifier). */
  readonly profileIds: ReadonlyArray<string | null>;
  /** Profiles created by this batch. */
  readonly created: ReadonlySet<string>;
  /** Existing profiles merged into another by this batch (an anonymous visitor who identified). */
  readonly merges: ReadonlyArray<{ readonly loser: string; readonly winner: string }>;
  /** Unwrapped data keys of every resulting profile, for writing its PII. */
  readonly subjectKeys: ReadonlyMap<string, SubjectKey>;
  /** Events dropped because one of their identifiers belongs to an erased person (their profile is null). */
  readonly erased: number;
}

/** Another transaction merged a profile this one read: read again. */
export class ResolutionConflict extends Error {
  override readonly name = 'ResolutionConflict';
}

/**
 * Maps the events of a batch to pseudonymous profiles, creating and merging as needed. Runs inside a
 * vault transaction and is race-safe across workers: every identifier of the batch is locked
 * (advisory locks, in one order), then every profile found (its key row, FOR UPDATE). Two workers
 * seeing the same new email therefore serialize, and the second finds the first's profile.
 */
export async function resolveProfiles(trx: VaultDbOrTrx, masterKey: Buffer, events: readonly EventIdentity[]): Promise<Resolution> {
  const allKeys = new Map<string, IdentityKey>();
  for (const e of events) for (const k of [...e.keys, ...e.lookupOnly]) allKeys.set(k.id, k);
  if (allKeys.size === 0) return { profileIds: events.map(() => null), created: new Set(), merges: [], subjectKeys: new Map(), erased: 0 };

  const locks = [...new Set([...allKeys.values()].map((k) => lockNumber(k).toString()))].sort();
  await sql`select pg_advisory_xact_lock(n) from (select unnest(${locks}::bigint[]) as n order by 1) as ordered`.execute(trx);

  // An erased person's identifiers (GDPR Art. 17): their events, still queued or sent later by a
  // browser that kept its cookie, are dropped rather than turned into a new profile. The erasure
  // worker takes the same locks before it writes the tombstones, so no batch slips between.
  const tombstoned = await erasedKeys(trx, [...allKeys.values()]);
  if (tombstoned.size > 0) {
    const isErased = (e: EventIdentity) => [...e.keys, ...e.lookupOnly].some((k) => tombstoned.has(k.id));
    const kept = events.map((e) => (isErased(e) ? null : e));
    const live = kept.filter((e): e is EventIdentity => e !== null);
    const inner = await resolveProfiles(trx, masterKey, live);
    let next = 0;
    return {
      ...inner,
      profileIds: kept.map((e) => (e === null ? null : (inner.profileIds[next++] ?? null))),
      erased: events.length - live.length,
    };
  }

  const keyList = [...allKeys.values()];
  const rows = await trx
    .selectFrom('vault.identities')
    .select(['kind', 'hash', 'profile_id'])
    .where('kind', 'in', [...new Set(keyList.map((k) => k.kind))])
    .where('hash', 'in', keyList.map((k) => k.hash))
    .execute();
  const owner = new Map<string, string>();
  const known = new Set<string>();
  for (const row of rows) {
    owner.set(`${row.kind}:${row.hash.toString('hex')}`, row.profile_id);
    if (row.kind !== 'anonymous') known.add(row.profile_id);
  }
  const existing = [...new Set(owner.values())];
  const subjectKeys = await lockSubjectKeys(trx, masterKey, existing);
  if (subjectKeys.size !== existing.length) throw new ResolutionConflict('a profile was merged or erased concurrently');

  // Union-find over profiles: a merge points the loser at the winner.
  const parent = new Map<string, string>();
  const root = (p: string): string => {
    let r = p;
    for (let next = parent.get(r); next !== undefined; next = parent.get(r)) r = next;
    return r;
  };
  const created = new Set<string>();
  const pendingKeys = new Map<string, { row: { profile_id: string; wrapped_key: Buffer }; key: SubjectKey }>();
  const newIdentities: Array<{ key: IdentityKey; profile: string; sourceId: string }> = [];
  // Known beats anonymous; among equals, an existing profile beats a new one, then the earlier seen.
  const rank = (p: string) => (known.has(p) ? 0 : 2) + (created.has(p) ? 1 : 0);

  const assigned: Array<string | null> = events.map((e) => {
    const found = new Set<string>();
    for (const k of [...e.keys, ...e.lookupOnly]) {
      const p = owner.get(k.id);
      if (p !== undefined) found.add(root(p));
    }
    let profile: string;
    if (found.size === 0) {
      if (e.keys.length === 0) return null;
      profile = randomUUID();
      created.add(profile);
      pendingKeys.set(profile, newSubjectKeyRow(masterKey, profile));
    } else {
      const ordered = [...found].sort((a, b) => rank(a) - rank(b));
      profile = ordered[0] as string;
      // Only anonymous profiles merge. Two profiles that each name a person (a userId on one, an
      // email on the other) are never joined automatically: a merge destroys a data key and cannot
      // be undone, and a shared address or a typo would join two people.
      for (const loser of ordered.slice(1)) if (!known.has(loser)) parent.set(loser, profile);
    }
    const unknownLookups = e.attachIfUnknown !== undefined && e.lookupOnly.every((k) => !owner.has(k.id));
    for (const k of unknownLookups && e.attachIfUnknown ? [...e.keys, e.attachIfUnknown] : e.keys) {
      if (!owner.has(k.id)) {
        owner.set(k.id, profile);
        newIdentities.push({ key: k, profile, sourceId: e.sourceId });
      }
      const holder = owner.get(k.id);
      if (k.kind !== 'anonymous' && holder !== undefined && root(holder) === profile) known.add(profile);
    }
    return profile;
  });

  const finalCreated = new Set([...created].filter((p) => root(p) === p));
  const createdRows = [...finalCreated].map((p) => pendingKeys.get(p)?.row).filter((r) => r !== undefined);
  if (createdRows.length > 0) await trx.insertInto('vault.subject_keys').values(createdRows).execute();
  for (const p of finalCreated) {
    const key = pendingKeys.get(p)?.key;
    if (key) subjectKeys.set(p, key);
  }
  if (newIdentities.length > 0) {
    await trx
      .insertInto('vault.identities')
      .values(newIdentities.map((i) => ({ kind: i.key.kind, hash: i.key.hash, profile_id: root(i.profile), source_id: i.sourceId })))
      .onConflict((oc) => oc.columns(['kind', 'hash']).doNothing())
      .execute();
  }
  const merges: Array<{ loser: string; winner: string }> = [];
  for (const loser of existing) {
    const winner = root(loser);
    if (winner === loser) continue;
    const loserKey = subjectKeys.get(loser);
    const winnerKey = subjectKeys.get(winner);
    if (!loserKey || !winnerKey) throw new Error(`missing data key while merging ${loser} into ${winner}`);
    await mergeVaultSubject(trx, loserKey, winnerKey);
    subjectKeys.delete(loser);
    merges.push({ loser, winner });
  }
  return { profileIds: assigned.map((p) => (p === null ? null : root(p))), created: finalCreated, merges, subjectKeys, erased: 0 };
}

async function erasedKeys(trx: VaultDbOrTrx, keys: readonly IdentityKey[]): Promise<Set<string>> {
  const rows = await trx
    .selectFrom('vault.erasure_tombstones')
    .select(['kind', 'hash'])
    .where('kind', 'in', [...new Set(keys.map((k) => k.kind))])
    .where('hash', 'in', keys.map((k) => k.hash))
    .where('expires_at', '>', new Date())
    .execute();
  return new Set(rows.map((r) => `${r.kind}:${r.hash.toString('hex')}`));
}

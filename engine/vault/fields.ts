import { sql } from 'kysely';
import type { VaultDbOrTrx } from '../db/types';
import { decryptField, encryptField, generateDataKey, unwrapDataKey, wrapDataKey } from './crypto';

/** A person's data key, unwrapped for the length of one operation and never stored unwrapped. */
export interface SubjectKey {
  readonly profileId: string;
  readonly dataKey: Buffer;
}

export function newSubjectKeyRow(masterKey: Buffer, profileId: string): { row: { profile_id: string; wrapped_key: Buffer }; key: SubjectKey } {
  const dataKey = generateDataKey();
  return { row: { profile_id: profileId, wrapped_key: wrapDataKey(masterKey, dataKey, profileId) }, key: { profileId, dataKey } };
}

/** Unwrapped keys of these profiles, locked FOR UPDATE (merges and erasure take the same locks). */
export async function lockSubjectKeys(db: VaultDbOrTrx, masterKey: Buffer, profileIds: readonly string[]): Promise<Map<string, SubjectKey>> {
  const keys = new Map<string, SubjectKey>();
  if (profileIds.length === 0) return keys;
  const rows = await db
    .selectFrom('vault.subject_keys')
    .select(['profile_id', 'wrapped_key'])
    .where('profile_id', 'in', [...profileIds].sort())
    .orderBy('profile_id')
    .forUpdate()
    .execute();
  for (const row of rows) keys.set(row.profile_id, { profileId: row.profile_id, dataKey: unwrapDataKey(masterKey, row.wrapped_key, row.profile_id) });
  return keys;
}

const aad = (profileId: string, field: string) => `${profileId}:${field}`;

export interface FieldWrite {
  readonly key: SubjectKey;
  readonly field: string;
  readonly value: string;
  readonly sourceId: string;
  readonly acquiredAt: Date;
}

/** Encrypts and upserts fields; the latest acquisition wins (an older replay does not overwrite). */
export async function writeFields(db: VaultDbOrTrx, writes: readonly FieldWrite[]): Promise<void> {
  if (writes.length === 0) return;
  await db
    .insertInto('vault.subject_fields')
    .values(
      writes.map((w) => ({
        profile_id: w.key.profileId,
        field: w.field,
        ciphertext: encryptField(w.key.dataKey, w.value, aad(w.key.profileId, w.field)),
        source_id: w.sourceId,
        acquired_at: w.acquiredAt,
      })),
    )
    .onConflict((oc) =>
      oc.columns(['profile_id', 'field']).doUpdateSet({
        ciphertext: sql`excluded.ciphertext`,
        source_id: sql`excluded.source_id`,
        acquired_at: sql`excluded.acquired_at`,
      }).where(sql<boolean>`excluded.acquired_at >= vault.subject_fields.acquired_at`),
    )
    .execute();
}

export interface DecryptedField {
  readonly field: string;
  readonly value: string;
  readonly sourceId: string;
  readonly acquiredAt: Date;
}

export async function readFields(db: VaultDbOrTrx, key: SubjectKey): Promise<DecryptedField[]> {
  const rows = await db.selectFrom('vault.subject_fields').selectAll().where('profile_id', '=', key.profileId).orderBy('field').execute();
  return rows.map((row) => ({
    field: row.field,
    value: decryptField(key.dataKey, row.ciphertext, aad(key.profileId, row.field)),
    sourceId: row.source_id,
    acquiredAt: row.acquired_at,
  }));
}

/**
 * How many fields each of these people has, and one field's value decrypted (the others stay
 * sealed), in one statement: what an erasure counts and tells processors (Art. 19).
 */
export async function fieldsOverview(
  db: VaultDbOrTrx,
  keys: ReadonlyMap<string, SubjectKey>,
  field: string,
): Promise<{ counts: Map<string, number>; values: Map<string, string> }> {
  const counts = new Map<string, number>();
  const values = new Map<string, string>();
  if (keys.size === 0) return { counts, values };
  const rows = await db.selectFrom('vault.subject_fields').select(['profile_id', 'field', 'ciphertext']).where('profile_id', 'in', [...keys.keys()]).execute();
  for (const row of rows) {
    counts.set(row.profile_id, (counts.get(row.profile_id) ?? 0) + 1);
    const key = keys.get(row.profile_id);
    if (row.field === field && key) values.set(row.profile_id, decryptField(key.dataKey, row.ciphertext, aad(row.profile_id, field)));
  }
  return { counts, values };
}

/**
 * Moves everything the vault holds for `loser` to `winner`: identities, and the fields the winner
 * lacks (re-encrypted under the winner's key). Then destroys the loser's key.
 */
export async function mergeVaultSubject(db: VaultDbOrTrx, loser: SubjectKey, winner: SubjectKey): Promise<void> {
  await db.updateTable('vault.identities').set({ profile_id: winner.profileId }).where('profile_id', '=', loser.profileId).execute();
  const [loserFields, winnerFields] = await Promise.all([readFields(db, loser), readFields(db, winner)]);
  const present = new Set(winnerFields.map((f) => f.field));
  await writeFields(
    db,
    loserFields.filter((f) => !present.has(f.field)).map((f) => ({ key: winner, field: f.field, value: f.value, sourceId: f.sourceId, acquiredAt: f.acquiredAt })),
  );
  await db.deleteFrom('vault.subject_keys').where('profile_id', '=', loser.profileId).execute();
  await db
    .insertInto('vault.profile_merges')
    .values({ loser_id: loser.profileId, winner_id: winner.profileId })
    .onConflict((oc) => oc.column('loser_id').doNothing())
    .execute();
}

/** One field, decrypted; the others stay sealed (the email worker needs the address only). */
export async function readField(db: VaultDbOrTrx, key: SubjectKey, field: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('vault.subject_fields')
    .select('ciphertext')
    .where('profile_id', '=', key.profileId)
    .where('field', '=', field)
    .executeTakeFirst();
  return row ? decryptField(key.dataKey, row.ciphertext, aad(key.profileId, field)) : undefined;
}

/** What a campaign send needs from the vault: the address and the first name, decrypted. */
export interface SendingFields {
  readonly email: string | undefined;
  readonly firstName: string | undefined;
}

/**
 * The sending fields of many people in one statement and without locks (a read), for the sends of
 * one batch that passed every check (engine/email/send-claim.ts): the email worker's decryption
 * (DESIGN.md invariant 5). A person with no data key (erased) is absent from the result.
 */
export async function readSendingFields(db: VaultDbOrTrx, masterKey: Buffer, profileIds: readonly string[]): Promise<Map<string, SendingFields>> {
  const out = new Map<string, SendingFields>();
  if (profileIds.length === 0) return out;
  const rows = await db
    .selectFrom('vault.subject_keys as k')
    .leftJoin('vault.subject_fields as f', (join) => join.onRef('f.profile_id', '=', 'k.profile_id').on('f.field', 'in', ['email', 'firstName']))
    .select(['k.profile_id', 'k.wrapped_key', 'f.field', 'f.ciphertext'])
    .where('k.profile_id', 'in', [...new Set(profileIds)])
    .execute();
  const byProfile = new Map<string, typeof rows>();
  for (const row of rows) byProfile.set(row.profile_id, [...(byProfile.get(row.profile_id) ?? []), row]);
  for (const [profileId, fields] of byProfile) {
    const dataKey = unwrapDataKey(masterKey, (fields[0] as (typeof rows)[number]).wrapped_key, profileId);
    const value = (field: string) => {
      const row = fields.find((f) => f.field === field);
      return row?.ciphertext ? decryptField(dataKey, row.ciphertext, aad(profileId, field)) : undefined;
    };
    out.set(profileId, { email: value('email'), firstName: value('firstName') });
  }
  return out;
}

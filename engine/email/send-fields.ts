import type { VaultDbOrTrx } from '../db/types';
import { decryptField, unwrapDataKey } from '../vault/crypto';

/** What a campaign send needs from the vault: the address and the first name, decrypted. */
export interface SendingFields {
  readonly email: string | undefined;
  readonly firstName: string | undefined;
}

/**
 * The sending fields of many people in one statement and without locks (a read), for the sends of
 * one batch that passed every check (send-claim.ts): the email worker's decryption (DESIGN.md
 * invariant 5), as vault/fields.ts readSendingFields does it for one. A person with no data key
 * (erased) is absent from the result.
 */
export async function readSendingFieldsOf(db: VaultDbOrTrx, masterKey: Buffer, profileIds: readonly string[]): Promise<Map<string, SendingFields>> {
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
    // AAD `${profileId}:${field}`, as vault/crypto.ts encryptField asks: a value cannot be swapped between fields or people.
    const value = (field: string) => {
      const row = fields.find((f) => f.field === field);
      return row?.ciphertext ? decryptField(dataKey, row.ciphertext, `${profileId}:${field}`) : undefined;
    };
    out.set(profileId, { email: value('email'), firstName: value('firstName') });
  }
  return out;
}

import type { Keys } from '../config';
import type { VaultDbOrTrx } from '../db/types';
import { normalizeEmail, normalizeId } from '../vault/normalize';
import { type IdentityKey, identityKey } from './keys';

export type SubjectIdentifier = { email: string } | { userId: string } | { anonymousId: string };

/** The one identifier given among email, userId and anonymousId; undefined unless exactly one is. */
export function subjectIdentifierOf(given: { email?: string | undefined; userId?: string | undefined; anonymousId?: string | undefined }): SubjectIdentifier | undefined {
  const set = [given.email, given.userId, given.anonymousId].filter((v) => v !== undefined).length;
  if (set !== 1) return undefined;
  if (given.email !== undefined) return { email: given.email };
  return given.userId !== undefined ? { userId: given.userId } : { anonymousId: given.anonymousId as string };
}

export function subjectKey(keys: Keys, id: SubjectIdentifier): IdentityKey | undefined {
  if ('email' in id) {
    const email = normalizeEmail(id.email);
    return email ? identityKey(keys.pseudonym, 'email', email) : undefined;
  }
  const [kind, raw] = 'userId' in id ? (['user', id.userId] as const) : (['anonymous', id.anonymousId] as const);
  const value = normalizeId(raw);
  return value ? identityKey(keys.pseudonym, kind, value) : undefined;
}

/** The profile an identifier belongs to, by its blind index; the first of `ids` that is known wins. */
export async function findProfileId(vault: VaultDbOrTrx, keys: Keys, ids: readonly SubjectIdentifier[]): Promise<string | undefined> {
  for (const id of ids) {
    const key = subjectKey(keys, id);
    if (!key) continue;
    const row = await vault
      .selectFrom('vault.identities')
      .select('profile_id')
      .where('kind', '=', key.kind)
      .where('hash', '=', key.hash)
      .executeTakeFirst();
    if (row) return row.profile_id;
  }
  return undefined;
}

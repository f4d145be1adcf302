import type { Keys } from '../config';
import { currentConsent } from '../consent/ledger';
import type { PurposeCatalog } from '../consent/purposes';
import type { Databases } from '../db/connect';
import { type IdentityKey, identityKey } from '../identity/keys';
import { normalizeEmail, normalizeId } from '../vault/normalize';
import type { Person } from './person';

/**
 * Who must not be added, checked for a whole batch of people in a few set-based reads before
 * anything is written:
 * - an address on the suppression list (app.suppressions holds the blind index of the address, the
 *   same HMAC the vault looks people up by): `erased` for a person who was erased (GDPR Art. 17;
 *   the hash is there so they are not re-imported), `suppressed` for a hard bounce, a complaint or a
 *   manual block;
 * - an identifier with a live erasure tombstone (an erasure running or just finished): `erased`;
 * - a person known here who objected to direct marketing (Art. 21(3): absolute, so no import or
 *   form typed in overrides it): `objected`;
 * - a person who withdrew or objected to a purpose the new consent would grant: `withdrawn` or
 *   `objected`. Their choice here is the latest we know; evidence from another system cannot be
 *   shown to be newer (Art. 7(3)).
 * The events worker checks tombstones again inside the write (engine/identity/resolve.ts), so an
 * erasure that lands between this read and the write still wins.
 */

export type SkipReason = 'erased' | 'suppressed' | 'objected' | 'withdrawn' | 'already_imported' | 'duplicate_row';

export interface Skip {
  readonly reason: SkipReason;
  /** No personal data: a purpose, a suppression reason, a line number. */
  readonly detail?: string;
}

/** The blind indexes of a checked person's identifiers (what resolve.ts will look them up by). */
export function personKeys(keys: Keys, person: Person): { email?: IdentityKey; user?: IdentityKey } {
  const email = person.email !== undefined ? normalizeEmail(person.email) : undefined;
  const user = person.userId !== undefined ? normalizeId(person.userId) : undefined;
  return {
    ...(email !== undefined ? { email: identityKey(keys.pseudonym, 'email', email) } : {}),
    ...(user !== undefined ? { user: identityKey(keys.pseudonym, 'user', user) } : {}),
  };
}

const hex = (b: Buffer) => b.toString('hex');

export async function skipsOf(
  databases: Databases,
  keys: Keys,
  catalog: PurposeCatalog,
  people: readonly Person[],
  grant: readonly string[],
): Promise<Array<Skip | undefined>> {
  const { db, vaultDb } = databases;
  const personKeyList = people.map((p) => personKeys(keys, p));
  const emailHashes = personKeyList.flatMap((k) => (k.email ? [k.email.hash] : []));
  const allKeys = personKeyList.flatMap((k) => [k.email, k.user].filter((x): x is IdentityKey => x !== undefined));
  if (allKeys.length === 0) return people.map(() => undefined);

  const suppressed = new Map<string, string>();
  if (emailHashes.length > 0) {
    const rows = await db.selectFrom('app.suppressions').select(['hash', 'reason']).where('hash', 'in', emailHashes).execute();
    for (const r of rows) suppressed.set(hex(r.hash), r.reason);
  }
  const kinds = [...new Set(allKeys.map((k) => k.kind))];
  const hashes = allKeys.map((k) => k.hash);
  const tombstones = await vaultDb
    .selectFrom('vault.erasure_tombstones')
    .select(['kind', 'hash'])
    .where('kind', 'in', kinds)
    .where('hash', 'in', hashes)
    .where('expires_at', '>', new Date())
    .execute();
  const erased = new Set(tombstones.map((t) => `${t.kind}:${hex(t.hash)}`));
  const identities = await vaultDb.selectFrom('vault.identities').select(['kind', 'hash', 'profile_id']).where('kind', 'in', kinds).where('hash', 'in', hashes).execute();
  const owner = new Map(identities.map((i) => [`${i.kind}:${hex(i.hash)}`, i.profile_id]));
  // The profile the events worker will write to: the userId's first, as resolve.ts ranks them.
  const profiles = personKeyList.map((k) => (k.user && owner.get(k.user.id)) ?? (k.email && owner.get(k.email.id)) ?? undefined);
  const consent = await currentConsent(db, [...new Set(profiles.filter((p): p is string => p !== undefined))]);
  const marketing = catalog.providing('send_marketing_email').map((p) => p.name);

  return people.map((_, i) => {
    const k = personKeyList[i] as (typeof personKeyList)[number];
    const suppression = k.email ? suppressed.get(hex(k.email.hash)) : undefined;
    if (suppression === 'erased') return { reason: 'erased', detail: 'on the suppression list' };
    if ([k.email, k.user].some((key) => key !== undefined && erased.has(key.id))) return { reason: 'erased', detail: 'erasure tombstone' };
    if (suppression !== undefined) return { reason: 'suppressed', detail: suppression };
    const profile = profiles[i];
    const state = profile !== undefined ? consent.get(profile) : undefined;
    if (!state) return undefined;
    const objectedMarketing = marketing.find((p) => state.get(p)?.decision === 'objected');
    if (objectedMarketing) return { reason: 'objected', detail: objectedMarketing };
    for (const purpose of grant) {
      const decision = state.get(purpose)?.decision;
      if (decision === 'objected') return { reason: 'objected', detail: purpose };
      if (decision === 'withdrawn') return { reason: 'withdrawn', detail: purpose };
    }
    return undefined;
  });
}

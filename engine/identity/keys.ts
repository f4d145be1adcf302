import type { IdentityKind } from '../db/types';
import { blindIndex } from '../vault/crypto';
import { normalizeEmail, normalizeId } from '../vault/normalize';

/** One identifier of a person, as a blind index: the value itself is never stored outside the vault. */
export interface IdentityKey {
  readonly kind: IdentityKind;
  readonly hash: Buffer;
  /** `kind:hex(hash)`, for maps and lock ordering. */
  readonly id: string;
}

export function identityKey(pseudonymKey: Buffer, kind: IdentityKind, normalized: string): IdentityKey {
  const hash = blindIndex(pseudonymKey, kind, normalized);
  return { kind, hash, id: `${kind}:${hash.toString('hex')}` };
}

function stringField(value: unknown): string | undefined {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

function traitEmail(event: Record<string, unknown>): string | undefined {
  const traits = event.traits as Record<string, unknown> | undefined;
  const contextTraits = (event.context as Record<string, unknown> | undefined)?.traits as Record<string, unknown> | undefined;
  return stringField(traits?.email) ?? stringField(contextTraits?.email);
}

export interface EventKeys {
  /** Identifiers the event's profile owns from now on. */
  keys: IdentityKey[];
  /** Identifiers that lead to a profile to merge, but are not claimed (an alias's previousId). */
  lookupOnly: IdentityKey[];
  /** Claimed as an anonymous id when no lookup key is known yet (an alias arriving first). */
  attachIfUnknown?: IdentityKey;
}

/**
 * The identifiers an event carries. `known` ones (user id, email) name a person; `anonymous` ones a
 * browser or device. An alias's previousId may be either, so it is looked up as both; if neither is
 * known yet (the alias overtook the anonymous events), it becomes an anonymous id of the profile so
 * those events still find it.
 */
export function eventIdentityKeys(pseudonymKey: Buffer, event: Record<string, unknown>): EventKeys {
  const keys: IdentityKey[] = [];
  const lookupOnly: IdentityKey[] = [];
  let attachIfUnknown: IdentityKey | undefined;
  const anonymousId = normalizeId(stringField(event.anonymousId) ?? '');
  const userId = normalizeId(stringField(event.userId) ?? '');
  const email = normalizeEmail(traitEmail(event) ?? '');
  if (userId) keys.push(identityKey(pseudonymKey, 'user', userId));
  if (email) keys.push(identityKey(pseudonymKey, 'email', email));
  if (anonymousId) keys.push(identityKey(pseudonymKey, 'anonymous', anonymousId));
  if (event.type === 'alias') {
    const previous = normalizeId(stringField(event.previousId) ?? '');
    if (previous) {
      attachIfUnknown = identityKey(pseudonymKey, 'anonymous', previous);
      lookupOnly.push(attachIfUnknown, identityKey(pseudonymKey, 'user', previous));
    }
  }
  return attachIfUnknown ? { keys, lookupOnly, attachIfUnknown } : { keys, lookupOnly };
}

/** A 64-bit advisory lock number for a key (the first 8 bytes of its HMAC, kind mixed in). */
export function lockNumber(key: IdentityKey): bigint {
  const kindSalt = BigInt(['email', 'user', 'anonymous', 'phone'].indexOf(key.kind) + 1);
  return BigInt.asIntN(64, key.hash.readBigInt64BE(0) ^ (kindSalt << 56n));
}

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

/**
 * The identifiers an event carries. `known` ones (user id, email) name a person; `anonymous` ones a
 * browser or device. An alias's previousId may be either, so it is looked up as both.
 */
export function eventIdentityKeys(pseudonymKey: Buffer, event: Record<string, unknown>): { keys: IdentityKey[]; lookupOnly: IdentityKey[] } {
  const keys: IdentityKey[] = [];
  const lookupOnly: IdentityKey[] = [];
  const anonymousId = normalizeId(stringField(event.anonymousId) ?? '');
  const userId = normalizeId(stringField(event.userId) ?? '');
  const email = normalizeEmail(traitEmail(event) ?? '');
  if (userId) keys.push(identityKey(pseudonymKey, 'user', userId));
  if (email) keys.push(identityKey(pseudonymKey, 'email', email));
  if (anonymousId) keys.push(identityKey(pseudonymKey, 'anonymous', anonymousId));
  if (event.type === 'alias') {
    const previous = normalizeId(stringField(event.previousId) ?? '');
    if (previous) lookupOnly.push(identityKey(pseudonymKey, 'anonymous', previous), identityKey(pseudonymKey, 'user', previous));
  }
  return { keys, lookupOnly };
}

/** A 64-bit advisory lock number for a key (the first 8 bytes of its HMAC, kind mixed in). */
export function lockNumber(key: IdentityKey): bigint {
  const kindSalt = BigInt(['email', 'user', 'anonymous', 'phone'].indexOf(key.kind) + 1);
  return BigInt.asIntN(64, key.hash.readBigInt64BE(0) ^ (kindSalt << 56n));
}

import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * The vault's pure cryptography: no I/O, no database.
 *
 * Why it exists: PII is kept only encrypted, under a key of its own per person, and everything
 * outside the vault refers to people by pseudonyms that cannot be reversed without a key that
 * never enters the database (GDPR Art. 4(5) pseudonymisation, Art. 32(1)(a) encryption).
 *
 * Crypto-shredding (Art. 17): each person's fields are encrypted with their own data key (DEK),
 * and the DEK is stored only wrapped by the master key. Destroying the wrapped DEK makes every
 * copy of that person's ciphertext unreadable, including copies in backups we cannot edit.
 *
 * AES-256-GCM with a random 96-bit IV per message: NIST SP 800-38D §8.2.2 bounds random IVs to
 * 2^32 messages per key; a DEK encrypts a handful of fields per person and the master key wraps
 * one DEK per person, both far below that bound.
 *
 * Format of every ciphertext: version (1 byte, 0x01) | IV (12) | tag (16) | ciphertext.
 */

export type IdentityKind = 'email' | 'user' | 'anonymous' | 'phone';

/** Raised for any ciphertext that cannot be trusted, and for malformed keys. Never carries plaintext. */
export class VaultCryptoError extends Error {
  override readonly name = 'VaultCryptoError';
}

const VERSION = 0x01;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;
/** 22 base64url characters = 132 bits: collision-free in practice, short enough for ids and logs. */
const PSEUDONYM_CHARS = 22;

function requireKey(key: Buffer, what: string): void {
  // AES-256 needs exactly 32 bytes; for HMAC a shorter key would silently weaken every pseudonym.
  if (key.length !== KEY_BYTES) throw new VaultCryptoError(`${what} must be ${KEY_BYTES} bytes, got ${key.length}`);
}

function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), iv, cipher.getAuthTag(), body]);
}

function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < HEADER_BYTES) throw new VaultCryptoError('ciphertext is too short');
  if (sealed[0] !== VERSION) throw new VaultCryptoError('unknown ciphertext version');
  const iv = sealed.subarray(1, 1 + IV_BYTES);
  const tag = sealed.subarray(1 + IV_BYTES, HEADER_BYTES);
  // authTagLength pins the tag size, so a truncated tag cannot lower the forgery bound.
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(sealed.subarray(HEADER_BYTES)), decipher.final()]);
  } catch (cause) {
    // Wrong key, wrong AAD (another person's row or field) or tampering: all look the same, by design.
    throw new VaultCryptoError('ciphertext failed authentication', { cause });
  }
}

/** A fresh per-person data key (DEK). */
export function generateDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Wraps a DEK under the master key, bound to its profile so it cannot be moved to another person's row. */
export function wrapDataKey(masterKey: Buffer, dataKey: Buffer, profileId: string): Buffer {
  requireKey(masterKey, 'master key');
  requireKey(dataKey, 'data key');
  return seal(masterKey, dataKey, profileId);
}

export function unwrapDataKey(masterKey: Buffer, wrapped: Buffer, profileId: string): Buffer {
  requireKey(masterKey, 'master key');
  const dataKey = open(masterKey, wrapped, profileId);
  if (dataKey.length !== KEY_BYTES) throw new VaultCryptoError('unwrapped data key has the wrong length');
  return dataKey;
}

/** Encrypts one PII field; callers pass aad = `${profileId}:${fieldName}` so a value cannot be swapped between fields or people. */
export function encryptField(dataKey: Buffer, plaintext: string, aad: string): Buffer {
  requireKey(dataKey, 'data key');
  return seal(dataKey, Buffer.from(plaintext, 'utf8'), aad);
}

export function decryptField(dataKey: Buffer, ciphertext: Buffer, aad: string): string {
  requireKey(dataKey, 'data key');
  return open(dataKey, ciphertext, aad).toString('utf8');
}

/**
 * Deterministic keyed look-up value for an identity (a "blind index"): finds a person by email
 * without storing the email. The kind prefix separates domains, so the same string as an email
 * and as a user id gives unrelated indexes. Kinds contain no NUL, so the encoding is unambiguous.
 */
export function blindIndex(pseudonymKey: Buffer, kind: IdentityKind, normalizedValue: string): Buffer {
  requireKey(pseudonymKey, 'pseudonym key');
  return createHmac('sha256', pseudonymKey).update(`${kind}\0${normalizedValue}`, 'utf8').digest();
}

/** A short stable pseudonym (job ids, log ids) that reveals nothing about `value` without the key. */
export function pseudonymize(pseudonymKey: Buffer, label: string, value: string): string {
  requireKey(pseudonymKey, 'pseudonym key');
  // A NUL in the label would let ('a\0b', 'c') and ('a', 'b\0c') collide.
  if (label.includes('\0')) throw new VaultCryptoError('pseudonym label must not contain NUL');
  const mac = createHmac('sha256', pseudonymKey).update(`${label}\0${value}`, 'utf8').digest('base64url');
  return mac.slice(0, PSEUDONYM_CHARS);
}

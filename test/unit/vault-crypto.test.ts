import { randomBytes } from 'node:crypto';
import {
  blindIndex,
  decryptField,
  encryptField,
  generateDataKey,
  pseudonymize,
  unwrapDataKey,
  VaultCryptoError,
  wrapDataKey,
} from '../../engine/vault/crypto';
import { normalizeEmail, normalizeId, normalizePhone } from '../../engine/vault/normalize';

const master = randomBytes(32);
const pseudonymKey = randomBytes(32);
const PROFILE = 'p_6f1c0a2e';
const EMAIL = 'jan.kowalski@example.com';

function flipped(buf: Buffer, at: number): Buffer {
  const copy = Buffer.from(buf);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
}

describe('vault crypto: data keys', () => {
  it('wraps and unwraps a data key', () => {
    const dek = generateDataKey();
    expect(dek).toHaveLength(32);
    const wrapped = wrapDataKey(master, dek, PROFILE);
    expect(wrapped[0]).toBe(0x01);
    expect(wrapped).toHaveLength(1 + 12 + 16 + 32);
    expect(unwrapDataKey(master, wrapped, PROFILE).equals(dek)).toBe(true);
  });

  it('binds a wrapped key to its profile: another profile cannot unwrap it', () => {
    const wrapped = wrapDataKey(master, generateDataKey(), PROFILE);
    expect(() => unwrapDataKey(master, wrapped, 'p_someone_else')).toThrow(VaultCryptoError);
  });

  it('refuses a wrong master key', () => {
    const wrapped = wrapDataKey(master, generateDataKey(), PROFILE);
    expect(() => unwrapDataKey(randomBytes(32), wrapped, PROFILE)).toThrow(VaultCryptoError);
  });

  it('refuses a wrapped key with any byte flipped, a short buffer or an unknown version', () => {
    const wrapped = wrapDataKey(master, generateDataKey(), PROFILE);
    for (let i = 0; i < wrapped.length; i++) {
      expect(() => unwrapDataKey(master, flipped(wrapped, i), PROFILE)).toThrow(VaultCryptoError);
    }
    expect(() => unwrapDataKey(master, wrapped.subarray(0, 28), PROFILE)).toThrow(VaultCryptoError);
    expect(() => unwrapDataKey(master, wrapped.subarray(0, wrapped.length - 1), PROFILE)).toThrow(VaultCryptoError);
    expect(() => unwrapDataKey(master, Buffer.alloc(0), PROFILE)).toThrow(VaultCryptoError);
  });

  it('rejects keys of the wrong length instead of weakening them', () => {
    expect(() => wrapDataKey(randomBytes(16), generateDataKey(), PROFILE)).toThrow(VaultCryptoError);
    expect(() => encryptField(randomBytes(31), EMAIL, 'x')).toThrow(VaultCryptoError);
    expect(() => blindIndex(Buffer.alloc(0), 'email', EMAIL)).toThrow(VaultCryptoError);
  });
});

describe('vault crypto: fields', () => {
  const dek = generateDataKey();
  const aad = `${PROFILE}:email`;

  it('round-trips text, including empty and non-ASCII values', () => {
    for (const text of [EMAIL, '', 'Zażółć gęślą jaźń 🙂']) {
      expect(decryptField(dek, encryptField(dek, text, aad), aad)).toBe(text);
    }
  });

  it('encrypts the same plaintext differently each time, and never in the clear', () => {
    const a = encryptField(dek, EMAIL, aad);
    const b = encryptField(dek, EMAIL, aad);
    expect(a.equals(b)).toBe(false);
    expect(a.toString('latin1')).not.toContain('kowalski');
  });

  it('fails on any flipped byte, another field or person, or another data key', () => {
    const sealed = encryptField(dek, EMAIL, aad);
    for (let i = 0; i < sealed.length; i++) {
      expect(() => decryptField(dek, flipped(sealed, i), aad)).toThrow(VaultCryptoError);
    }
    expect(() => decryptField(dek, sealed, `${PROFILE}:phone`)).toThrow(VaultCryptoError);
    expect(() => decryptField(dek, sealed, 'p_other:email')).toThrow(VaultCryptoError);
    expect(() => decryptField(generateDataKey(), sealed, aad)).toThrow(VaultCryptoError);
  });
});

describe('vault crypto: blind indexes and pseudonyms', () => {
  it('gives a deterministic 32-byte blind index that differs by kind and by key', () => {
    const a = blindIndex(pseudonymKey, 'email', EMAIL);
    expect(a).toHaveLength(32);
    expect(blindIndex(pseudonymKey, 'email', EMAIL).equals(a)).toBe(true);
    expect(blindIndex(pseudonymKey, 'user', EMAIL).equals(a)).toBe(false);
    expect(blindIndex(randomBytes(32), 'email', EMAIL).equals(a)).toBe(false);
    expect(blindIndex(pseudonymKey, 'email', 'jan@example.com').equals(a)).toBe(false);
  });

  it('pseudonymizes to a stable 22-character base64url string, separated by label', () => {
    const p = pseudonymize(pseudonymKey, 'job', EMAIL);
    expect(p).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(pseudonymize(pseudonymKey, 'job', EMAIL)).toBe(p);
    expect(pseudonymize(pseudonymKey, 'log', EMAIL)).not.toBe(p);
    expect(pseudonymize(randomBytes(32), 'job', EMAIL)).not.toBe(p);
    expect(() => pseudonymize(pseudonymKey, 'a\0b', 'c')).toThrow(VaultCryptoError);
  });
});

describe('identity normalization', () => {
  it.each([
    ['  Jan.Kowalski@Example.COM ', 'jan.kowalski@example.com'],
    ['jan@bücher.de', 'jan@xn--bcher-kva.de'],
    ['jan@xn--bcher-kva.de', 'jan@xn--bcher-kva.de'],
    ['jan+news@gmail.com', 'jan+news@gmail.com'],
    ['j.a.n@gmail.com', 'j.a.n@gmail.com'],
    ['o\'brien@sub.example.co.uk', 'o\'brien@sub.example.co.uk'],
    ['jan@EXAMPLE.com', 'jan@example.com'],
  ])('normalizes email %j to %j', (raw, expected) => {
    expect(normalizeEmail(raw)).toBe(expected);
  });

  it.each([
    '',
    '   ',
    'jan',
    'jan@',
    '@example.com',
    'jan@@example.com',
    'jan@a@example.com',
    'jan@localhost',
    'jan@example.com.',
    'jan@exa mple.com',
    'jan kowalski@example.com',
    '.jan@example.com',
    'jan.@example.com',
    'ja..n@example.com',
    '"jan"@example.com',
    'jan@[192.0.2.1]',
    'jan@192.0.2.1',
    'jan@-example.com',
    'jan@exa_mple.com',
    'jan\u200b@example.com',
    `${'a'.repeat(65)}@example.com`,
    `jan@${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(60)}.com`,
  ])('rejects email %j', (raw) => {
    expect(normalizeEmail(raw)).toBeUndefined();
  });

  it('accepts a 64-character local part', () => {
    const local = 'a'.repeat(64);
    expect(normalizeEmail(`${local}@example.com`)).toBe(`${local}@example.com`);
  });

  it.each([
    ['+48 601-234-567', '+48601234567'],
    ['+48 (601) 234.567', '+48601234567'],
    ['601 234 567', '601234567'],
    ['0048 601 234 567', '0048601234567'],
    ['+123456789012345', '+123456789012345'],
  ])('normalizes phone %j to %j', (raw, expected) => {
    expect(normalizePhone(raw)).toBe(expected);
  });

  it.each(['', '+48 601', '123456', '+1234567890123456', '601 234 567 ext 12', '48+601234567', '++48601234567', '+0601234567'])(
    'rejects phone %j',
    (raw) => {
      expect(normalizePhone(raw)).toBeUndefined();
    },
  );

  it('trims ids and rejects empty, overlong or control-character ones', () => {
    expect(normalizeId('  user-42 ')).toBe('user-42');
    expect(normalizeId('User-42')).toBe('User-42');
    expect(normalizeId('a'.repeat(200))).toBe('a'.repeat(200));
    expect(normalizeId('a'.repeat(201))).toBeUndefined();
    expect(normalizeId('   ')).toBeUndefined();
    expect(normalizeId('a\u0000b')).toBeUndefined();
  });
});

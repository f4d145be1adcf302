import { parseAddress } from '../email/address';

/**
 * One canonical form per identity, so the same person always yields the same blind index and is
 * never split into two profiles by spelling. Anything that is not plausibly an identity returns
 * undefined: callers treat it as absent rather than storing garbage as PII.
 */

/**
 * The address rule itself (what is accepted, and why) is engine/email/address.ts: one rule for what
 * is stored, looked up and sent to, so no address the vault holds can fail to be sent for its form.
 *
 * The whole address is lowercased. RFC 5321 §2.4 allows a case-sensitive local part, but no
 * mainstream provider treats it so, and treating `Jan@` and `jan@` as two people would split one
 * person's consent and erasure across two profiles. Dots and `+tags` are kept: ignoring them is a
 * rule of some providers (Gmail), not of email, and applying it elsewhere would merge strangers.
 * The domain is converted to punycode (IDNA/UTS #46), so `bücher.de` and `xn--bcher-kva.de` match.
 */
export function normalizeEmail(raw: string): string | undefined {
  const parsed = parseAddress(raw);
  if (!parsed.ok) return undefined;
  // NFC (parseAddress) so a composed and a decomposed "ü" in the local part are the same address;
  // lowercasing can change a letter's length (İ), so the result is checked again.
  const lowered = parseAddress(parsed.address.toLowerCase().normalize('NFC'));
  return lowered.ok ? lowered.address : undefined;
}

/** E.164: at most 15 digits. Fewer than 7 is no reachable subscriber number anywhere. */
const PHONE_DIGITS = /^\+?[0-9]{7,15}$/;
// Only the separators people type; letters, slashes or "ext." mean this is not a bare number.
const PHONE_SEPARATORS = /[\s\-\u2010-\u2015\u2212.()]/g;

/**
 * Keeps a leading + and the digits. A number without + is returned as digits only: guessing the
 * country (from locale, IP or a "00" prefix) would invent data and could merge two people; the
 * caller that knows the country can add it before calling.
 */
export function normalizePhone(raw: string): string | undefined {
  const compact = raw.trim().replace(PHONE_SEPARATORS, '');
  if (!PHONE_DIGITS.test(compact)) return undefined;
  // E.164 country codes never start with 0.
  return compact.startsWith('+0') ? undefined : compact;
}

const MAX_ID = 200;
// C0 controls and DEL: PostgreSQL text cannot hold NUL, and none belongs in an id an SDK sends.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** userId / anonymousId: opaque strings from the caller, compared exactly (case is kept). */
export function normalizeId(raw: string): string | undefined {
  const id = raw.trim();
  if (id.length === 0 || id.length > MAX_ID || CONTROL.test(id)) return undefined;
  return id;
}

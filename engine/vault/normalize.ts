import { domainToASCII } from 'node:url';

/**
 * One canonical form per identity, so the same person always yields the same blind index and is
 * never split into two profiles by spelling. Anything that is not plausibly an identity returns
 * undefined: callers treat it as absent rather than storing garbage as PII.
 */

/** RFC 5321 §4.5.3.1.1 / §4.5.3.1.3: local part ≤ 64 octets, path ≤ 256 octets, so an address ≤ 254. */
const MAX_LOCAL = 64;
const MAX_ADDRESS = 254;
// Dot-atom of RFC 5322 §3.2.3, plus non-ASCII (RFC 6531, internationalized local parts).
// Quoted local parts ("a b"@x) are valid but vanishingly rare and mostly abuse: rejected.
const ATOM = String.raw`[a-z0-9!#$%&'*+/=?^_\x60{|}~\u0080-\u{10FFFF}-]+`;
const LOCAL_PART = new RegExp(`^${ATOM}(?:\\.${ATOM})*$`, 'u');
// An LDH label (RFC 1035 §2.3.1, RFC 5890), applied after punycode conversion.
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// The non-ASCII range above would otherwise admit Unicode spaces, controls and invisible format characters.
const INVISIBLE = /[\s\p{C}]/u;

/**
 * The whole address is lowercased. RFC 5321 §2.4 allows a case-sensitive local part, but no
 * mainstream provider treats it so, and treating `Jan@` and `jan@` as two people would split one
 * person's consent and erasure across two profiles. Dots and `+tags` are kept: ignoring them is a
 * rule of some providers (Gmail), not of email, and applying it elsewhere would merge strangers.
 * The domain is converted to punycode (IDNA/UTS #46), so `bücher.de` and `xn--bcher-kva.de` match.
 */
export function normalizeEmail(raw: string): string | undefined {
  // NFC so a composed and a decomposed "ü" in the local part are the same address.
  const text = raw.trim().normalize('NFC').toLowerCase();
  const at = text.indexOf('@');
  if (at < 0 || text.indexOf('@', at + 1) >= 0) return undefined;
  const local = text.slice(0, at);
  if (local.length === 0 || Buffer.byteLength(local, 'utf8') > MAX_LOCAL || !LOCAL_PART.test(local) || INVISIBLE.test(local)) {
    return undefined;
  }
  const domain = domainToASCII(text.slice(at + 1)); // '' when the domain is not valid IDNA
  const labels = domain.split('.');
  const tld = labels[labels.length - 1] ?? '';
  // No address literals ([1.2.3.4]) or bare IPs: marketing mail goes to domains.
  if (labels.length < 2 || !labels.every((l) => DNS_LABEL.test(l)) || /^\d+$/.test(tld)) return undefined;
  const address = `${local}@${domain}`;
  return Buffer.byteLength(address, 'utf8') > MAX_ADDRESS ? undefined : address;
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

import { domainToASCII, domainToUnicode } from 'node:url';

/**
 * The one rule for an email address the engine accepts, stores and sends to. It is deliberately
 * narrower than RFC 5322 §3.4.1: the address ends up in a header line and in the SMTP envelope
 * (MAIL FROM / RCPT TO), where every construct the RFC allows beyond a bare `local@domain` has served
 * to inject headers or recipients (nodemailer CVE-2021-23400, ASVS 5.0 V4.2.4). So:
 *
 * - one `local@domain` addr-spec, nothing around it: no display name, no angle brackets, no comments
 *   `(…)`, no group `name: a@b;`, no list `a@b, c@d`, no whitespace or control characters at all;
 * - the local part is a dot-atom (RFC 5322 §3.2.3): atoms of letters, digits and
 *   ``# $ & ' * + / = ? ^ _ { } ~ -`` joined by single dots. No quoted local parts (`"a b"@x`): valid
 *   but used by almost no real mailbox and mostly by abuse. Refused on purpose though they are atext:
 *   `%` and `!` (the "percent hack" and UUCP bang paths route mail through relays, and `%` is how
 *   `%0d%0a` smuggles an encoded line break), `|` (a pipe to a program in sendmail-style aliases) and
 *   `` ` `` (a shell metacharacter). Letters beyond ASCII (RFC 6531, sent with SMTPUTF8 when the relay
 *   offers it) are accepted when they are letters, marks or digits of one script;
 * - the domain is a host name: two labels or more (a single label only where the caller allows it, for
 *   the operator's own sender), letters, digits and hyphens (RFC 1035 §2.3.1) after conversion to
 *   punycode with `domainToASCII` (IDNA, UTS #46), a top-level label that is not all digits, no
 *   address literal (`[192.0.2.1]`) or bare IP: marketing mail goes to domains;
 * - look-alikes (homographs): a label whose letters mix scripts (`pаypal` with a Cyrillic `а`) is
 *   refused, except the mixes UTS #39 §5.2 calls "highly restrictive" (Latin with Han and Japanese
 *   kana, with Han and Bopomofo, or with Han and Hangul); so is an all-Cyrillic label spelled only with
 *   letters that look Latin (`раураl`-style, as Chromium refuses them) under a non-Cyrillic top-level
 *   domain. A single-script international domain is accepted and used in its punycode form;
 * - lengths of RFC 5321 §4.5.3.1: local part ≤ 64 octets, label ≤ 63, address ≤ 254 (a path of 256
 *   with its brackets).
 *
 * A reason never quotes the input: it is shown to API clients and stored with failed sends, and the
 * input is personal data (and may be the attack).
 */

export type ParsedAddress =
  | { readonly ok: true; readonly address: string; readonly local: string; readonly domain: string }
  | { readonly ok: false; readonly reason: string };

export interface AddressOptions {
  /** Accept a one-label domain (`no-reply@localhost`): for the operator's own sender only. */
  readonly allowSingleLabelDomain?: boolean;
}

/** What an API client is told an address must look like. */
export const ADDRESS_RULE = 'expected one plain email address local@domain';

const MAX_LOCAL = 64;
const MAX_ADDRESS = 254;
const MAX_LABEL = 63;
/** Longer than any acceptable address in any form: refused before any further work. */
const MAX_INPUT = 1024;

const LOCAL_ASCII = /^[A-Za-z0-9#$&'*+/=?^_{}~-]$/;
const LOCAL_ASCII_ATOMS = /^[A-Za-z0-9#$&'*+/=?^_{}~-]+(?:\.[A-Za-z0-9#$&'*+/=?^_{}~-]+)*$/;
const LOCAL_UNICODE = /^[\p{L}\p{M}\p{N}]$/u;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
// Letters, marks, digits, hyphens and the dots UTS #46 maps to "." (ideographic and fullwidth full stops).
const DOMAIN_CHARACTERS = /^[\p{L}\p{M}\p{N}.\u3002\uff0e\uff61-]+$/u;
// Control, format (zero-width, bidi), unassigned and private-use characters and line separators: none
// belongs anywhere in an address, and UTS #46 would silently drop some of them. Spaces are refused too,
// after the checks that name what a space usually comes with (a display name, a group, a comment).
const CONTROL = /[\p{C}\u2028\u2029]/u;

/**
 * The scripts a letter is recognised in. A letter of none of them is refused: conservative, and
 * no domain a marketing list holds is written in one.
 */
const SCRIPTS = [
  'Latin', 'Greek', 'Cyrillic', 'Armenian', 'Hebrew', 'Arabic', 'Syriac', 'Thaana', 'Devanagari', 'Bengali',
  'Gurmukhi', 'Gujarati', 'Oriya', 'Tamil', 'Telugu', 'Kannada', 'Malayalam', 'Sinhala', 'Thai', 'Lao',
  'Tibetan', 'Myanmar', 'Georgian', 'Hangul', 'Ethiopic', 'Khmer', 'Mongolian', 'Hiragana', 'Katakana',
  'Bopomofo', 'Han',
] as const;
type Script = (typeof SCRIPTS)[number];
const SCRIPT_PATTERNS = SCRIPTS.map((name) => [name, new RegExp(`^\\p{Script=${name}}$`, 'u')] as const);
const LETTER = /^\p{L}$/u;

/** UTS #39 §5.2 "highly restrictive": the only mixes of scripts allowed in one label. */
const ALLOWED_MIXES: ReadonlyArray<ReadonlySet<Script>> = [
  new Set<Script>(['Latin', 'Han', 'Hiragana', 'Katakana']),
  new Set<Script>(['Latin', 'Han', 'Bopomofo']),
  new Set<Script>(['Latin', 'Han', 'Hangul']),
];

// Cyrillic letters that read as Latin ones (Chromium's IDN spoof checker list, kCyrillicLatinLookalikes).
const CYRILLIC_LOOKALIKES = new Set([...'асԁеһіјӏорԛѕԝхуъьҽпгѵѡ']);

function scriptOf(ch: string): Script | 'unknown' | undefined {
  if (/^[A-Za-z]$/.test(ch)) return 'Latin';
  // Digits, hyphens and combining marks (Common, Inherited) belong to every script.
  if (!LETTER.test(ch)) return undefined;
  for (const [name, pattern] of SCRIPT_PATTERNS) if (pattern.test(ch)) return name;
  return 'unknown';
}

/** Why the letters of one label (local part or domain label, in Unicode) are a homograph risk, if they are. */
function scriptProblem(text: string): string | undefined {
  const scripts = new Set<Script>();
  for (const ch of text) {
    const script = scriptOf(ch);
    if (script === 'unknown') return 'it holds letters of a script this engine does not accept';
    if (script) scripts.add(script);
  }
  if (scripts.size > 1 && !ALLOWED_MIXES.some((mix) => [...scripts].every((s) => mix.has(s)))) {
    return `it mixes letters of ${[...scripts].sort().join(' and ')}, a look-alike (homograph) risk`;
  }
  return undefined;
}

function localProblem(local: string): string | undefined {
  if (local.length === 0) return 'the part before the @ is empty';
  if (Buffer.byteLength(local, 'utf8') > MAX_LOCAL) return `the part before the @ is longer than ${MAX_LOCAL} octets (RFC 5321 §4.5.3.1.1)`;
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    return 'the part before the @ may not start or end with a dot or hold two dots in a row';
  }
  // The common case, an ASCII dot-atom, in one test; it holds Latin letters only.
  if (LOCAL_ASCII_ATOMS.test(local)) return undefined;
  for (const ch of local) {
    if (ch === '.' || LOCAL_ASCII.test(ch)) continue;
    if (ch.charCodeAt(0) >= 0x80 && LOCAL_UNICODE.test(ch)) continue;
    return "the part before the @ may hold only letters, digits, dots and # $ & ' * + / = ? ^ _ { } ~ -";
  }
  const scripts = scriptProblem(local);
  return scripts ? `the part before the @: ${scripts}` : undefined;
}

function domainProblem(raw: string, options: AddressOptions): { ascii: string } | { problem: string } {
  if (raw.length === 0) return { problem: 'the domain after the @ is empty' };
  if (raw.startsWith('[') || /^[0-9.]+$/.test(raw)) return { problem: 'the domain must be a host name, not an IP address' };
  // Before conversion: domainToASCII would percent-decode (`exa%6Dple`) and drop or map other characters.
  if (!DOMAIN_CHARACTERS.test(raw)) return { problem: 'the domain may hold only letters, digits, hyphens and dots' };
  const ascii = domainToASCII(raw); // '' when the name is not valid IDNA
  if (ascii === '') return { problem: 'the domain is not a valid host name' };
  const labels = ascii.split('.');
  if (labels.length < 2 && !options.allowSingleLabelDomain) return { problem: 'the domain must have at least two labels (a name and a top-level domain)' };
  for (const label of labels) {
    if (label.length > MAX_LABEL) return { problem: `a label of the domain is longer than ${MAX_LABEL} characters` };
    if (!DNS_LABEL.test(label)) return { problem: 'the domain may hold only letters, digits and hyphens, in labels joined by single dots' };
  }
  const tld = labels[labels.length - 1] as string;
  if (/^\d+$/.test(tld)) return { problem: 'the domain must be a host name, not an IP address' };
  // Plain ASCII labels (no `xn--`) hold Latin letters only: nothing to look alike.
  if (!ascii.includes('xn--')) return { ascii };
  // Checked on the Unicode form, so that an `xn--` label written in punycode is checked as well.
  const unicodeLabels = domainToUnicode(ascii).split('.');
  const unicodeTld = unicodeLabels[unicodeLabels.length - 1] ?? '';
  const cyrillicTld = [...unicodeTld].some((ch) => scriptOf(ch) === 'Cyrillic');
  for (const label of unicodeLabels) {
    const scripts = scriptProblem(label);
    if (scripts) return { problem: `a label of the domain: ${scripts}` };
    const letters = [...label].filter((ch) => scriptOf(ch) !== undefined);
    if (!cyrillicTld && letters.length > 0 && letters.every((ch) => CYRILLIC_LOOKALIKES.has(ch))) {
      return { problem: 'a label of the domain is spelled in Cyrillic letters that look Latin, a look-alike (homograph) risk' };
    }
  }
  return { ascii };
}

/**
 * Checks one address against the rule above. `address` is the form to send to and store: the local
 * part as given (NFC), the domain in lowercase punycode. Spaces and tabs around it are dropped; any
 * other whitespace or control character, anywhere, refuses it.
 */
export function parseAddress(input: string, options: AddressOptions = {}): ParsedAddress {
  const fail = (why: string): ParsedAddress => ({ ok: false, reason: `${ADDRESS_RULE}: ${why}` });
  if (typeof input !== 'string') return fail('not text');
  if (input.length > MAX_INPUT) return fail(`the address is longer than ${MAX_ADDRESS} octets (RFC 5321 §4.5.3.1.3)`);
  const text = input.replace(/^[ \t]+|[ \t]+$/g, '');
  if (text.length === 0) return fail('the address is empty');
  if (CONTROL.test(text)) return fail('no line breaks, control or invisible characters are allowed');
  if (!text.isWellFormed()) return fail('unpaired UTF-16 surrogates are not allowed');
  const nfc = text.normalize('NFC');
  if (nfc.includes('"')) return fail('quoted local parts ("…"@domain) are not accepted');
  if (/[()]/.test(nfc)) return fail('comments (…) are not accepted');
  if (/[<>]/.test(nfc)) return fail('no display name or angle brackets: give the bare address');
  if (/[,;:]/.test(nfc)) return fail('one address only: no lists, groups or routes');
  if (/[[\]\\]/.test(nfc)) return fail('no address literals or backslashes');
  if (/\s/u.test(nfc)) return fail('no spaces are allowed');
  const at = nfc.indexOf('@');
  if (at < 0) return fail('the @ is missing');
  if (nfc.indexOf('@', at + 1) >= 0) return fail('exactly one @ is allowed');
  const local = nfc.slice(0, at);
  const badLocal = localProblem(local);
  if (badLocal) return fail(badLocal);
  const domain = domainProblem(nfc.slice(at + 1), options);
  if ('problem' in domain) return fail(domain.problem);
  const address = `${local}@${domain.ascii}`;
  if (Buffer.byteLength(address, 'utf8') > MAX_ADDRESS) return fail(`the address is longer than ${MAX_ADDRESS} octets (RFC 5321 §4.5.3.1.3)`);
  return { ok: true, address, local, domain: domain.ascii };
}

export type ParsedMailbox =
  | { readonly ok: true; readonly name: string | undefined; readonly address: string }
  | { readonly ok: false; readonly reason: string };

export const MAILBOX_RULE = 'expected addr@domain or Name <addr@domain>';
// RFC 5322 §3.2.3 specials, which would make a display name mean something else, and every control
// character or line separator, which could end the header line.
const NAME_SPECIALS = /[()<>[\]:;@\\,"]/;
const NAME_CONTROL = /[\p{Cc}\u2028\u2029]/u;
const MAX_NAME = 128;

/**
 * A mailbox as the operator writes the sender (EMAIL_FROM): a bare address, or a display name and the
 * address in angle brackets. The name is a plain phrase (no specials, no control characters) or one
 * quoted string without quotes or backslashes inside; the address follows `parseAddress`.
 */
export function parseMailbox(input: string, options: AddressOptions = {}): ParsedMailbox {
  const text = input.trim();
  const angle = /^(.*?)[ \t]*<([^<>]*)>$/s.exec(text);
  const rawName = angle ? (angle[1] as string) : undefined;
  const parsed = parseAddress(angle ? (angle[2] as string) : text, options);
  if (!parsed.ok) return { ok: false, reason: `${MAILBOX_RULE}; ${parsed.reason}` };
  if (rawName === undefined || rawName.length === 0) return { ok: true, name: undefined, address: parsed.address };
  const quoted = /^"([^"\\]*)"$/s.exec(rawName);
  const name = quoted ? (quoted[1] as string) : rawName;
  if (NAME_CONTROL.test(name)) return { ok: false, reason: `${MAILBOX_RULE}: the name may not hold line breaks or control characters` };
  if (!quoted && NAME_SPECIALS.test(name)) {
    return { ok: false, reason: `${MAILBOX_RULE}: the name may not hold ( ) < > [ ] : ; @ \\ , or " unless it is in double quotes` };
  }
  if (name.length > MAX_NAME) return { ok: false, reason: `${MAILBOX_RULE}: the name is longer than ${MAX_NAME} characters` };
  if (name.trim().length === 0) return { ok: true, name: undefined, address: parsed.address };
  return { ok: true, name: name.trim(), address: parsed.address };
}

/**
 * Characters that must never reach a header value: C0 and C1 controls (CR and LF above all), DEL, and
 * the Unicode line and paragraph separators some parsers break lines at.
 */
export const HEADER_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * Removes personal data that senders put where it does not belong: in free-text properties, page
 * titles, search terms and URLs. GDPR Art. 5(1)(c) (data minimisation) and Art. 25 (data protection
 * by default): what the engine does not need is not stored, so an address typed into a search box
 * never reaches the events table.
 *
 * Runs once per string per event in a worker, so every pattern is linear (no nested quantifiers
 * over the same characters) and each family is skipped when a cheap pre-check rules it out.
 */

export const REDACTED = '[redacted]';

// Also the URL-encoded form (`jan%40example.com`), as found in query strings and logged URLs.
// Bounded repetitions (RFC 5321 §4.5.3.1: local part ≤ 64, label ≤ 63) cap the work per position.
const EMAIL =
  /[\p{L}\p{N}._%+-]{1,64}(?:@|%40)[\p{L}\p{N}-]{1,63}(?:\.[\p{L}\p{N}-]{1,63})*\.\p{L}{2,63}/gu;

// Digit-based findings must stand alone: not glued to a word, a decimal point or a dash-joined id
// (`ORD-2026-000123`, UUID groups, `1299.99`).
const CARD_RUN = /(?<![\w.+-])\d+(?:[ -]{1,3}\d+)*/g;
const PESEL = /(?<![\w.+-])\d{11}(?![\w]|[.-]\d)/g;
// A run of digit groups joined by spaces or dashes, with `+CC` first or `(202)` groups. Separators
// and groups share no character, so it matches greedily without backtracking; which part of a run
// is a phone is decided in code below.
const DIGIT_RUN = /(?<![\w.+-])(?:\+\d+|\(\d{1,4}\)|\d+)(?:[ -]{1,3}(?:\(\d{1,4}\)|\d+))*/g;
const GROUP = /(\+)?\(?(\d+)\)?/g;

const PESEL_WEIGHTS = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3] as const;

function countDigits(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

export function isValidPesel(digits: string): boolean {
  if (!/^\d{11}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < 10; i++) sum += Number(digits[i]) * (PESEL_WEIGHTS[i] ?? 0);
  return (10 - (sum % 10)) % 10 === Number(digits[10]);
}

export function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

// ISO/IEC 7812: payment cards start with 2–6 (Mastercard 2-series, Amex/Diners/JCB 3, Visa 4,
// Mastercard/Maestro 5, Discover/UnionPay 6). This keeps millisecond timestamps (`17…`) out.
const isCard = (digits: string): boolean =>
  digits.length >= 13 && digits.length <= 19 && /^[2-6]/.test(digits) && passesLuhn(digits);

/** A run directly followed by a letter or `.5` belongs to something else (`29T10:00`, `1.5`, hex). */
const gluedAfter = (text: string, end: number): boolean => /^(?:\w|[.-]\w)/.test(text.slice(end, end + 2));

/**
 * Finds card numbers among the digit groups of one run. A card is a contiguous stretch of groups
 * (`4111 1111 1111 1111`), possibly followed by unrelated numbers (`… 12/27`), so stretches are tried
 * rather than only the whole run.
 */
function scrubCardsInRun(run: string, glued: boolean): string {
  const groups = [...run.matchAll(/\d+/g)].map((m) => ({ start: m.index, end: m.index + m[0].length, digits: m[0] }));
  if (glued) groups.pop();
  let out = '';
  let at = 0;
  for (let i = 0; i < groups.length; i++) {
    let digits = '';
    let found = -1;
    for (let j = i; j < groups.length && digits.length < 19; j++) {
      digits += groups[j]?.digits ?? '';
      if (isCard(digits)) found = j;
    }
    const from = groups[i];
    const to = groups[found];
    if (!from || !to) continue;
    out += run.slice(at, from.start) + REDACTED;
    at = to.end;
    i = found;
  }
  return at === 0 ? run : out + run.slice(at);
}

interface Group {
  start: number;
  end: number;
  digits: number;
  plus: boolean;
  dashBefore: boolean;
  /** Not part of a phone number: too long, glued to a word, or part of a date. */
  breaks: boolean;
}

/** Finds phone numbers inside one digit run and returns their [start, end) spans. */
function phoneSpans(run: string, gluedAfter: boolean): Array<[number, number]> {
  const groups: Group[] = [];
  for (const m of run.matchAll(GROUP)) {
    const start = m.index;
    const prev = run[start - 1];
    groups.push({
      start,
      end: start + m[0].length,
      digits: (m[2] ?? '').length,
      plus: m[1] !== undefined,
      dashBefore: prev === '-' || (prev === ' ' && run[start - 2] === '-'),
      breaks: false,
    });
  }
  const last = groups[groups.length - 1];
  if (gluedAfter && last) last.breaks = true;
  // ISO 8601 dates (2026-11-29) and their day-first form (29-11-2026) are not phone numbers.
  for (let i = 0; i + 2 < groups.length; i++) {
    const [a, b, c] = [groups[i], groups[i + 1], groups[i + 2]];
    if (!a || !b || !c || !b.dashBefore || !c.dashBefore) continue;
    const isoDate = a.digits === 4 && b.digits === 2 && c.digits === 2;
    const dayFirst = a.digits === 2 && b.digits === 2 && c.digits === 4;
    if (isoDate || dayFirst) a.breaks = b.breaks = c.breaks = true;
  }

  const spans: Array<[number, number]> = [];
  let i = 0;
  const first = groups[0];
  if (first?.plus && !first.breaks) {
    // International form: +CC then groups; E.164 allows at most 15 digits (ITU-T E.164 §6).
    let total = 0;
    let j = 0;
    while (j < groups.length) {
      const g = groups[j];
      if (!g || g.breaks || total + g.digits > 15) break;
      total += g.digits;
      j++;
    }
    const end = groups[j - 1];
    if (total >= 8 && end) {
      spans.push([first.start, end.end]);
      i = j;
    } else i = 1;
  }
  // National forms: 3–6 groups of 1–4 digits, 9–15 digits in all (`601 234 567`, `202-555-0143`).
  while (i < groups.length) {
    let j = i;
    let total = 0;
    while (j < groups.length) {
      const g = groups[j];
      if (!g || g.breaks || g.plus || g.digits > 4) break;
      total += g.digits;
      j++;
    }
    const count = j - i;
    const from = groups[i];
    const to = groups[j - 1];
    if (count >= 3 && count <= 6 && total >= 9 && total <= 15 && from && to) spans.push([from.start, to.end]);
    i = Math.max(j, i + 1);
  }
  return spans;
}

function scrubPhones(text: string): string {
  return text.replace(DIGIT_RUN, (run: string, offset: number) => {
    const spans = phoneSpans(run, gluedAfter(text, offset + run.length));
    if (spans.length === 0) return run;
    let out = '';
    let at = 0;
    for (const [start, end] of spans) {
      out += run.slice(at, start) + REDACTED;
      at = end;
    }
    return out + run.slice(at);
  });
}

const scrubCards = (text: string): string =>
  text.replace(CARD_RUN, (run: string, offset: number) => scrubCardsInRun(run, gluedAfter(text, offset + run.length)));

const scrubPesels = (text: string): string => text.replace(PESEL, (m) => (isValidPesel(m) ? REDACTED : m));

/** Replaces every email address, phone number, PESEL and payment card number with `[redacted]`. */
export function scrubText(text: string): string {
  let out = text;
  if (out.includes('@') || out.includes('%40')) out = out.replace(EMAIL, REDACTED);
  // Every digit-based kind needs at least 8 digits (the shortest international phone number).
  // Cards and PESELs go first: their checksums are stronger evidence than a phone's shape.
  if (countDigits(out) >= 8) out = scrubPhones(scrubPesels(scrubCards(out)));
  return out;
}

export function containsPii(text: string): boolean {
  return scrubText(text) !== text;
}

/** Percent-decodes leniently: a malformed escape leaves the text as it is (it is still scanned). */
function decode(text: string, plusIsSpace: boolean): string {
  const t = plusIsSpace ? text.replace(/\+/g, ' ') : text;
  if (!t.includes('%')) return t;
  try {
    return decodeURIComponent(t);
  } catch {
    return t;
  }
}

// A `+` in a query is a space in form encoding (`%2B48+601+234+567`) but a literal plus when sent
// unencoded (`?tel=+48601234567`): either reading revealing personal data is enough.
const queryValueHasPii = (raw: string): boolean => containsPii(decode(raw, true)) || containsPii(decode(raw, false));

function scrubPath(path: string): string {
  return path
    .split('/')
    .map((segment) => (segment !== '' && containsPii(decode(segment, false)) ? REDACTED : segment))
    .join('/');
}

function scrubQuery(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return queryValueHasPii(pair) ? REDACTED : pair;
      const name = pair.slice(0, eq);
      if (queryValueHasPii(name)) return REDACTED;
      return queryValueHasPii(pair.slice(eq + 1)) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
}

/** Scrubs a path with optional query; fragments of single-page apps often have this very shape. */
function scrubPathAndQuery(text: string, bareQuery: boolean): string {
  const q = text.indexOf('?');
  if (q < 0) return bareQuery && text.includes('=') ? scrubQuery(text) : scrubPath(text);
  return `${scrubPath(text.slice(0, q))}?${scrubQuery(text.slice(q + 1))}`;
}

const ABSOLUTE = /^([a-z][a-z\d+.-]*:\/\/)([^/?#]*)(.*)$/is;

/**
 * Scrubs a URL part by part, so that what carries no personal data stays byte-identical (campaign
 * parameters, paths) and what does is replaced whole: a parameter's value, a path segment.
 */
export function scrubUrl(url: string): string {
  // Every finding needs `@`, an escape (`%40`, `%2B`) or at least 8 digits.
  if (!url.includes('@') && !url.includes('%') && countDigits(url) < 8) return url;
  const hash = url.indexOf('#');
  const beforeHash = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? undefined : url.slice(hash + 1);

  let head = '';
  let rest = beforeHash;
  const absolute = ABSOLUTE.exec(beforeHash);
  if (absolute) {
    if (!URL.canParse(url)) return scrubText(url);
    const [, scheme = '', authority = '', pathAndQuery = ''] = absolute;
    // Userinfo is a credential or a name (RFC 3986 §3.2.1 deprecates it): dropped, never worth keeping.
    head = scheme + authority.slice(authority.lastIndexOf('@') + 1);
    rest = pathAndQuery;
  } else if (!beforeHash.startsWith('/') && !beforeHash.startsWith('?')) {
    return scrubText(url);
  }
  const scrubbed = head + scrubPathAndQuery(rest, false);
  return fragment === undefined ? scrubbed : `${scrubbed}#${scrubPathAndQuery(fragment, true)}`;
}

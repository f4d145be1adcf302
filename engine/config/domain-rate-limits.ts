import { domainToASCII } from 'node:url';
import { z } from 'zod';

/**
 * EMAIL_DOMAIN_RATE_LIMITS: how fast each recipient domain may be sent to, e.g.
 * `gmail.com=20/s,outlook.com=600/m,*=50/s`. Large mailbox providers throttle (4xx) or junk a
 * sender that goes faster than they like, each by its own measure; the global EMAIL_RATE_LIMIT
 * cannot express that. `*` is the limit of every domain not listed, each such domain with its own
 * allowance (not one allowance shared by all of them).
 */
export interface DomainRateLimit {
  /** Lowercase, punycode (as normalizeEmail writes an address's domain), or `*` for every other domain. */
  readonly domain: string;
  /** At most `max` messages per `perMs`, with bursts of up to `max`. */
  readonly max: number;
  readonly perMs: number;
}

const UNITS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const ENTRY = /^([^=\s]+)\s*=\s*(\d+)\s*\/\s*([a-z]+)$/i;
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ALLOWED = 'expected a comma-separated list of DOMAIN=COUNT/UNIT such as gmail.com=20/s,outlook.com=600/m,*=50/s (DOMAIN a domain name, or * for each domain not listed; COUNT a positive integer; UNIT s, m, h or d)';

function domainOf(text: string): string | undefined {
  if (text === '*') return '*';
  const ascii = domainToASCII(text.toLowerCase());
  const labels = ascii.split('.');
  return labels.length >= 2 && labels.every((l) => DNS_LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1] ?? '') ? ascii : undefined;
}

/** Parses the list; the message of a problem names the entry and says what is allowed. */
export function parseDomainRateLimits(text: string): { ok: true; limits: DomainRateLimit[] } | { ok: false; message: string } {
  const limits: DomainRateLimit[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    const match = ENTRY.exec(entry);
    if (!match) return { ok: false, message: `${entry ? `'${entry}' is not DOMAIN=COUNT/UNIT` : 'an empty entry'}; ${ALLOWED}` };
    const [, name, count, unit] = match as unknown as [string, string, string, string];
    const domain = domainOf(name);
    if (!domain) return { ok: false, message: `'${entry}': '${name}' is not a domain name; ${ALLOWED}` };
    const max = Number(count);
    if (!Number.isSafeInteger(max) || max <= 0) return { ok: false, message: `'${entry}': the count must be a positive integer; ${ALLOWED}` };
    const perMs = UNITS[unit.toLowerCase()];
    if (perMs === undefined) return { ok: false, message: `'${entry}': '${unit}' is not a unit; ${ALLOWED}` };
    if (limits.some((l) => l.domain === domain)) return { ok: false, message: `'${name}' is listed twice; give each domain one limit` };
    limits.push({ domain, max, perMs });
  }
  return { ok: true, limits };
}

export const DomainRateLimits = z.string().transform((text, ctx) => {
  const parsed = parseDomainRateLimits(text);
  if (parsed.ok) return parsed.limits;
  ctx.issues.push({ code: 'custom', message: parsed.message, input: text });
  return z.NEVER;
});

/** The limit that applies to a recipient domain (already normalized), if any. */
export function limitFor(limits: readonly DomainRateLimit[], domain: string): DomainRateLimit | undefined {
  return limits.find((l) => l.domain === domain) ?? limits.find((l) => l.domain === '*');
}

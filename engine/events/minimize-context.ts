import type { AcceptedEvent } from '../../schemas/segment';
import { truncateIp } from '../privacy/ip';
import { scrubText, scrubUrl } from '../privacy/scrub-text';
import { summarizeUserAgent } from '../privacy/user-agent';

const str = (value: unknown, max: number): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value.slice(0, max) : undefined;

function pick(entries: Array<[string, unknown]>): Record<string, unknown> | undefined {
  const kept = entries.filter(([, v]) => v !== undefined);
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

/**
 * The part of Segment's `context` worth keeping, minimized (GDPR Art. 5(1)(c)): page location with PII
 * removed from URLs and titles, browser and OS family instead of the user agent, the network prefix
 * instead of the address, campaign tags, locale and time zone. Everything else (device ids, the
 * full IP, screen sizes, traits) is dropped.
 */
export function minimizeContext(accepted: AcceptedEvent): Record<string, unknown> {
  const ctx = (accepted.event.context ?? {}) as Record<string, unknown>;
  const page = (ctx.page ?? {}) as Record<string, unknown>;
  const campaign = (ctx.campaign ?? {}) as Record<string, unknown>;
  const library = (ctx.library ?? {}) as Record<string, unknown>;
  // Scrubbed whole, then cut: cutting first could split an address and leave half of it.
  const url = (value: unknown) => {
    const s = str(value, Number.POSITIVE_INFINITY);
    return s === undefined ? undefined : scrubUrl(s).slice(0, 2_000);
  };
  const text = (value: unknown, max = 300) => {
    const s = str(value, Number.POSITIVE_INFINITY);
    return s === undefined ? undefined : scrubText(s).slice(0, max);
  };
  // Fields with a known shape are kept only in that shape; anything else is dropped, not scrubbed.
  const shaped = (value: unknown, shape: RegExp, max: number) => {
    const s = str(value, max + 1);
    return s !== undefined && s.length <= max && shape.test(s) ? s : undefined;
  };
  // A server-side SDK forwards its visitor's address in context.ip; it is truncated like the socket's.
  const ipPrefix = accepted.ipPrefix !== undefined && ctx.ip === undefined ? accepted.ipPrefix : truncateIp(str(ctx.ip, 64));
  const result = pick([
    ['page', pick([['path', url(page.path)], ['url', url(page.url)], ['referrer', url(page.referrer)], ['title', text(page.title)], ['search', url(page.search)]])],
    ['userAgent', summarizeUserAgent(str(ctx.userAgent, 1_000))],
    ['ipPrefix', ipPrefix],
    ['locale', shaped(ctx.locale, /^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$/, 35)],
    ['timezone', shaped(ctx.timezone, /^[A-Za-z][A-Za-z0-9_+\-/]*$/, 64)],
    ['library', pick([['name', text(library.name, 100)], ['version', shaped(library.version, /^[A-Za-z0-9.+_-]+$/, 50)]])],
    ['campaign', pick(['source', 'medium', 'name', 'term', 'content'].map((k) => [k, text(campaign[k], 200)] as [string, unknown]))],
    ['signals', accepted.signals.gpc || accepted.signals.dnt ? accepted.signals : undefined],
  ]);
  return result ?? {};
}

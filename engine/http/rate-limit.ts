import ipaddr from 'ipaddr.js';
import type { HttpRateLimit } from '../config/config';

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, in ms of `now()`. */
  at: number;
}

/**
 * Token buckets, one per key, in this process's memory: a request takes one token; tokens come back
 * at `perSecond` up to `burst`. The hot path is one Map look-up and some arithmetic, no I/O.
 *
 * Memory is bounded: at `maxKeys` the oldest key goes before a new one comes in (Map keeps insertion
 * order), so a flood of new addresses costs at most `maxKeys` entries. A key evicted this way comes
 * back with a full bucket, which gives nothing to a flooder: each of its fresh addresses would have
 * had one anyway.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly limit: HttpRateLimit,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.perMs = limit.perSecond / 1000;
  }

  /** Takes a token for `key`: 0 when there was one, else the whole seconds until there is (Retry-After, ≥ 1). */
  take(key: string): number {
    const now = this.now();
    const bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next();
        if (!oldest.done) this.buckets.delete(oldest.value);
      }
      this.buckets.set(key, { tokens: this.limit.burst - 1, at: now });
      return 0;
    }
    const tokens = Math.min(this.limit.burst, bucket.tokens + (now - bucket.at) * this.perMs);
    bucket.at = now;
    if (tokens >= 1) {
      bucket.tokens = tokens - 1;
      return 0;
    }
    bucket.tokens = tokens;
    return Math.max(1, Math.ceil((1 - tokens) / this.perMs / 1000));
  }

  /** How many keys are held (at most `maxKeys`). */
  get size(): number {
    return this.buckets.size;
  }
}

/**
 * The bucket key of a client address. An IPv6 client usually holds a whole /64 (RFC 6177) and can
 * pick any address in it, so IPv6 is limited per /64; an IPv4-mapped address (`::ffff:a.b.c.d`,
 * RFC 4291 §2.5.5.2) counts as its IPv4 address.
 */
export function clientKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    const v6 = ipaddr.IPv6.parse(ip);
    if (v6.isIPv4MappedAddress()) return v6.toIPv4Address().toString();
    const [a = 0, b = 0, c = 0, d = 0] = v6.parts;
    return `${a.toString(16)}:${b.toString(16)}:${c.toString(16)}:${d.toString(16)}::/64`;
  } catch {
    return ip;
  }
}

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/config';
import type { SourceCache } from '../ingest/source-cache';
import type { Metrics } from '../metrics/registry';
import { sendError } from './errors';
import { clientKey, TokenBuckets } from './rate-limit';

export type RouteKind = 'api' | 'pixel';

/**
 * The rate limits of the public routes (OWASP ASVS 5.0 V2.4.1): one bucket per client address and
 * one per source, in this process. The address is fastify's `request.ip`, which believes
 * X-Forwarded-For only from the proxies HTTP_TRUST_PROXY names (ASVS 4.1.3). A source's bucket is
 * touched only once its write key proved valid, so random keys never create entries: they are
 * limited by their address alone.
 */
export class PublicRateLimits {
  private readonly perIp: TokenBuckets | undefined;
  private readonly perSource: TokenBuckets | undefined;

  constructor(
    limits: Config['http']['rateLimits'],
    private readonly metrics: Metrics,
    maxKeys = 100_000,
  ) {
    this.perIp = limits.perIp ? new TokenBuckets(limits.perIp, maxKeys) : undefined;
    this.perSource = limits.perWriteKey ? new TokenBuckets(limits.perWriteKey, maxKeys) : undefined;
  }

  /** 0: go on; else the seconds the client should wait (Retry-After). Counted when limited. */
  ip(request: FastifyRequest, route: RouteKind): number {
    if (!this.perIp) return 0;
    const wait = this.perIp.take(clientKey(request.ip));
    if (wait > 0) this.metrics.httpRateLimited.inc({ scope: 'ip', route });
    return wait;
  }

  source(sourceId: string, route: RouteKind): number {
    if (!this.perSource) return 0;
    const wait = this.perSource.take(sourceId);
    if (wait > 0) this.metrics.httpRateLimited.inc({ scope: 'write_key', route });
    return wait;
  }
}

const perServer = new WeakMap<SourceCache, PublicRateLimits>();

/**
 * The limits of one HTTP server: its pixel and its API routes share them (one budget per address
 * across all public routes). Keyed by the server's SourceCache, which each server has its own of.
 */
export function publicLimitsOf(deps: { readonly config: Config; readonly metrics: Metrics; readonly sources: SourceCache }): PublicRateLimits {
  let limits = perServer.get(deps.sources);
  if (!limits) {
    limits = new PublicRateLimits(deps.config.http.rateLimits, deps.metrics);
    perServer.set(deps.sources, limits);
  }
  return limits;
}

/** The JSON answer of a limited API request: 429 with Retry-After in seconds (RFC 9110 §10.2.3, RFC 6585 §4). */
export function sendRateLimited(reply: FastifyReply, scope: 'ip' | 'write_key', seconds: number, metrics: Metrics): FastifyReply {
  reply.header('retry-after', String(seconds));
  const what = scope === 'ip' ? 'from this client address' : "with this source's write key";
  return sendError(reply, 'RATE_LIMITED', `too many requests ${what}; nothing was accepted, retry after ${seconds} s`, metrics);
}

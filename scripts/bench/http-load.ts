/**
 * HTTP load as the ingest benchmark and the suite's ceilings generate it: autocannon over loopback,
 * 50 connections, no pipelining (browsers do not pipeline pixels), for a fixed time.
 */
import autocannon from 'autocannon';

export const CONNECTIONS = 50;

export interface LoadResult {
  readonly scenario: string;
  readonly requestsPerSec: number;
  readonly eventsPerSec: number;
  /** Latency in ms, as autocannon reports it (whole milliseconds). */
  readonly p50: number;
  readonly p99: number;
  readonly non2xx: number;
  readonly errors: number;
}

export async function load(scenario: string, options: autocannon.Options, eventsPerRequest: number, seconds: number): Promise<LoadResult> {
  const result = await autocannon({ connections: CONNECTIONS, duration: seconds, pipelining: 1, ...options });
  return {
    scenario,
    requestsPerSec: Math.round(result.requests.average),
    eventsPerSec: Math.round(result.requests.average * eventsPerRequest),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

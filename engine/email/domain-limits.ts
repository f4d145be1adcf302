import type { Redis } from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import { type DomainRateLimit, limitFor } from '../config/domain-rate-limits';
import type { Db } from '../db/types';
import { addToOutbox } from '../outbox/outbox';
import { pseudonymize } from '../vault/crypto';

/**
 * Per-recipient-domain rate limits (EMAIL_DOMAIN_RATE_LIMITS), shared by every email worker through
 * Redis. The domain is known only once the address is decrypted, so this runs inside the send, after
 * the claim; a send over its domain's limit is not attempted but released back to `scheduled` at the
 * time its turn comes, with a delayed job through the outbox, as quiet hours do. Never lost: the row
 * stays in PostgreSQL, and the sweep re-queues it should the job go.
 *
 * The limit is a GCRA (a token bucket kept as a timestamp, the "theoretical arrival time"): up to
 * `max` at once, then one every `perMs / max`. A send that finds no room takes the next free turn
 * at once (a reservation under its send id, honoured when it comes back), so a backlog of N sends
 * to one domain is spread over its turns and each is deferred once, not woken together again and
 * again. Keys hold keyed hashes of the domain and the send id, never the domain (a custom domain
 * such as kowalski.pl can name a person: DESIGN.md invariant 1), and expire when they no longer matter.
 */

export type DomainTake = { readonly ok: true } | { readonly ok: false; readonly until: Date; readonly limit: string };

export interface DomainLimiter {
  /** One message to the domain of `address` (normalized, as normalizeEmail writes it) at `now`: sent now, or not before `until`. */
  take(address: string, sendId: string, now: Date): Promise<DomainTake>;
}

/** A send may run this long after its reserved turn and still use it (a busy queue, a restart). */
const RESERVATION_GRACE_MS = 60 * 60_000;
/** A claim is taken up to a second early (send-step.ts `not_due`): a turn is honoured as early. */
const EARLY_MS = 1_000;

// KEYS[1]: the domain's bucket, a hash of `tat` (theoretical arrival time, ms) and `now` (the latest
// time it was asked at); KEYS[2]: this send's reserved turn (ms).
// ARGV: now (ms), emission interval (ms, may be fractional), burst window (ms), grace (ms), early (ms).
// Returns {1, 0} to send now, or {0, turn} with the time (ms) of the send's turn.
// Callers' clocks are read before their call arrives (and differ a little between workers): a call
// stamped earlier than one already seen counts as made at that later time, so the order in which
// concurrent calls arrive never costs a burst its room.
const GCRA = `
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local seen = tonumber(redis.call('HGET', KEYS[1], 'now') or '0')
if seen > now then now = seen end
local reserved = redis.call('GET', KEYS[2])
if reserved then
  local turn = tonumber(reserved)
  if turn <= now + tonumber(ARGV[5]) then
    redis.call('DEL', KEYS[2])
    return {1, 0}
  end
  return {0, turn}
end
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
if tat < now then tat = now end
local nextTat = tat + interval
redis.call('HSET', KEYS[1], 'tat', tostring(nextTat), 'now', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(nextTat - now))
if nextTat - now <= window then return {1, 0} end
local turn = math.ceil(nextTat - window)
redis.call('SET', KEYS[2], tostring(turn), 'PX', turn - now + tonumber(ARGV[4]))
return {0, turn}
`;

export interface DomainLimiterOptions {
  /** The fail-fast producer connection (a limiter that cannot be read fails the attempt, which is retried). */
  readonly redis: Redis;
  /** QUEUE_PREFIX: its hash tag keeps both keys of the script in one Redis Cluster slot. */
  readonly prefix: string;
  readonly pseudonymKey: Buffer;
  readonly limits: readonly DomainRateLimit[];
  /** Where `consentflow_email_domain_deferred_total` is counted. */
  readonly registry?: Registry;
}

const METRIC = 'consentflow_email_domain_deferred_total';

function deferredCounter(registry: Registry | undefined): Counter<'limit'> | undefined {
  if (!registry) return undefined;
  return (
    (registry.getSingleMetric(METRIC) as Counter<'limit'> | undefined) ??
    new Counter({
      name: METRIC,
      help: 'Campaign sends deferred because their recipient domain was over its EMAIL_DOMAIN_RATE_LIMITS limit, by limit (the domain as listed, or *)',
      labelNames: ['limit'] as const,
      registers: [registry],
    })
  );
}

/** Undefined when no limit is set: sends take no Redis round trip. */
export function createDomainLimiter(options: DomainLimiterOptions): DomainLimiter | undefined {
  if (options.limits.length === 0) return undefined;
  const counter = deferredCounter(options.registry);
  return {
    async take(address, sendId, now) {
      const domain = address.slice(address.lastIndexOf('@') + 1);
      const limit = limitFor(options.limits, domain);
      if (!limit) return { ok: true };
      const hash = pseudonymize(options.pseudonymKey, 'email-domain', domain);
      const bucket = `${options.prefix}:domain-rate:${hash}`;
      const result = (await options.redis.eval(
        GCRA,
        2,
        bucket,
        // The send id hashed too: nothing in these keys leads back to a person once they are erased.
        `${bucket}:${pseudonymize(options.pseudonymKey, 'email-domain-turn', sendId)}`,
        now.getTime(),
        limit.perMs / limit.max,
        limit.perMs,
        Math.max(limit.perMs, RESERVATION_GRACE_MS),
        EARLY_MS,
      )) as [number, number];
      if (result[0] === 1) return { ok: true };
      counter?.inc({ limit: limit.domain });
      return { ok: false, until: new Date(result[1]), limit: limit.domain };
    },
  };
}

/**
 * Releases a claimed send (state `sending`) back to `scheduled` at `until`, with its delayed job in
 * the outbox, in one transaction. It was not attempted: the attempt the claim counted is given back.
 */
export async function deferClaimedSend(db: Db, sendId: string, until: Date): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('app.scheduled_sends')
      .set((eb) => ({
        state: 'scheduled',
        state_reason: 'deferred: the recipient domain was over its rate limit (EMAIL_DOMAIN_RATE_LIMITS)',
        due_at: until,
        deferred_from: eb.fn.coalesce('deferred_from', 'due_at'),
        claimed_at: null,
        attempts: eb('attempts', '-', 1),
      }))
      .where('id', '=', sendId)
      .where('state', '=', 'sending')
      .execute();
    await addToOutbox(trx, [{ queue: 'email', job: 'send', jobId: `send-${sendId}-${until.getTime()}`, payload: { sendId }, runAt: until }]);
  });
}

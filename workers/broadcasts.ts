import { missingBroadcastSchedulers, runBroadcastTick, syncBroadcastSchedulers } from '../engine/automation/broadcasts';
import { relayAfterCommit } from '../engine/outbox/relay-after-commit';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

/** How often the worker checks that Redis still has every broadcast's scheduler. */
const SCHEDULER_CHECK_MS = 60_000;

/**
 * The broadcasts worker: keeps one BullMQ job scheduler per broadcast campaign, and at each tick
 * enrols the segment's members page by page (their sends go through the outbox to the email queue).
 */
export function broadcastsHandlers(services: Services): JobHandlers<'broadcasts'> {
  void syncBroadcastSchedulers(services.queues, services.rules.compiled, services.log).catch((err: unknown) =>
    services.log.warn({ err }, 'broadcast schedulers not updated; they are again at the next start or reload'),
  );
  // A Redis that lost its data loses the job schedulers with it, and nothing else puts them back
  // until the next start or rules reload: the broadcasts would never tick again (found by
  // test/faults/redis-flush.fault.ts). A scheduler found missing is upserted again within a minute;
  // a tick that fell due in between is missed, as with any scheduler that was down.
  const check = async () => {
    try {
      const missing = await missingBroadcastSchedulers(services.queues, services.rules.compiled);
      if (missing.length === 0) return;
      services.log.warn({ missing }, 'broadcast schedulers missing from Redis (data lost?); upserting them again');
      await syncBroadcastSchedulers(services.queues, services.rules.compiled, services.log);
    } catch (err) {
      services.log.warn({ err }, 'broadcast schedulers not checked; again in a minute');
    }
  };
  const timer = setInterval(() => void check(), SCHEDULER_CHECK_MS);
  timer.unref();
  services.releasers.add('broadcast schedulers check', async () => clearInterval(timer));
  return {
    tick: async (payload, { log }) => {
      const automation = { compiled: services.rules.compiled, catalog: services.rules.purposes };
      const outcome = await runBroadcastTick(services.databases.db, automation, payload.campaignId, new Date(), {
        afterPage: (outboxRows) => relayAfterCommit({ ...services, log }, outboxRows),
      });
      log.info({ campaign: payload.campaignId, ...outcome }, 'broadcast tick');
      return outcome;
    },
  };
}

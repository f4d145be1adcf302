import { missingBroadcastSchedulers, runBroadcastTick, syncBroadcastSchedulers } from '../engine/automation/broadcasts';
import { relayAfterCommit } from '../engine/outbox/relay-after-commit';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';
import { watchSchedulers } from './scheduler-watch';

/**
 * The broadcasts worker: keeps one BullMQ job scheduler per broadcast campaign, and at each tick
 * enrols the segment's members page by page (their sends go through the outbox to the email queue).
 */
export function broadcastsHandlers(services: Services): JobHandlers<'broadcasts'> {
  void syncBroadcastSchedulers(services.queues, services.rules.compiled, services.log).catch((err: unknown) =>
    services.log.warn({ err }, 'broadcast schedulers not updated; they are again at the next start or reload'),
  );
  watchSchedulers(services, 'broadcast schedulers', async () => {
    const missing = await missingBroadcastSchedulers(services.queues, services.rules.compiled);
    if (missing.length === 0) return;
    services.log.warn({ missing }, 'broadcast schedulers missing from Redis (data lost?); upserting them again');
    await syncBroadcastSchedulers(services.queues, services.rules.compiled, services.log);
  });
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

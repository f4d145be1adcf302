import { applyPendingMerges } from '../engine/events/merges';
import { processEventBatch } from '../engine/events/process-batch';
import { batchDeps, enqueueConfirmations } from '../engine/runtime/batch';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

/** The events worker: tracking events from the API become pseudonymous profiles, events and vault entries. */
export function eventsHandlers(services: Services): JobHandlers<'events'> {
  const deps = batchDeps(services);
  const separateVault = (services.databases.vaultDb as unknown) !== (services.databases.db as unknown);
  let lastSweep = 0;
  return {
    ingest: async (payload, { log }) => {
      // Only a separate vault database can leave a merge half applied (after a crash between commits).
      if (separateVault && Date.now() - lastSweep > 60_000) {
        lastSweep = Date.now();
        const swept = await applyPendingMerges(services.databases);
        if (swept > 0) log.info({ merges: swept }, 'applied merges left pending by an interrupted batch');
      }
      const outcome = await processEventBatch(deps, payload.events);
      services.metrics.eventsProcessed.inc({ outcome: 'stored' }, outcome.stored);
      if (outcome.duplicates > 0) services.metrics.eventsProcessed.inc({ outcome: 'duplicate' }, outcome.duplicates);
      if (outcome.rejected > 0) {
        services.metrics.eventsProcessed.inc({ outcome: 'rejected' }, outcome.rejected);
        log.warn({ rejected: outcome.rejected }, 'events refused by PostgreSQL were set aside in app.event_rejections');
      }
      if (outcome.unlinked > 0) services.metrics.eventsProcessed.inc({ outcome: 'unlinked' }, outcome.unlinked);
      // Committed first, then queued; an enqueue lost here is found again by the confirmation sweeper.
      await enqueueConfirmations(services, outcome.confirmations).catch((err: unknown) =>
        log.warn({ err }, 'confirmation emails not queued yet; the email worker sweeper will queue them'),
      );
      log.debug(outcome, 'event batch processed');
      return outcome;
    },
  };
}

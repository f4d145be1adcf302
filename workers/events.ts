import path from 'node:path';
import { applyPendingMerges } from '../engine/events/merges';
import { processEventBatch } from '../engine/events/process-batch';
import { EventPartitions } from '../engine/events/partitions';
import { loadPropertiesPolicy } from '../engine/privacy/properties-policy';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

/** The events worker: tracking events from the API become pseudonymous profiles, events and vault entries. */
export function eventsHandlers(services: Services): JobHandlers<'events'> {
  const policy = loadPropertiesPolicy(path.join(services.config.rulesDir, 'properties.yaml'));
  const deps = { databases: services.databases, keys: services.keys, policy, partitions: new EventPartitions(services.databases.db) };
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
      log.debug(outcome, 'event batch processed');
      return outcome;
    },
  };
}

import path from 'node:path';
import { processEventBatch } from '../engine/events/process-batch';
import { EventPartitions } from '../engine/events/partitions';
import { loadPropertiesPolicy } from '../engine/privacy/properties-policy';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

/** The events worker: tracking events from the API become pseudonymous profiles, events and vault entries. */
export function eventsHandlers(services: Services): JobHandlers<'events'> {
  const policy = loadPropertiesPolicy(path.join(services.config.rulesDir, 'properties.yaml'));
  const deps = { databases: services.databases, keys: services.keys, policy, partitions: new EventPartitions(services.databases.db) };
  return {
    ingest: async (payload, { log }) => {
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

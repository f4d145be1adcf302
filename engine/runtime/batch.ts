import type { BatchDeps } from '../events/process-batch';
import { EventPartitions } from '../events/partitions';
import type { Services } from './services';

/** What processing a batch of events needs, from a process's services (the events worker and the consent API). */
export function batchDeps(services: Pick<Services, 'databases' | 'keys' | 'rules' | 'config'>): BatchDeps {
  return {
    databases: services.databases,
    keys: services.keys,
    policy: services.rules.properties,
    partitions: new EventPartitions(services.databases.db),
    consent: { catalog: services.rules.purposes, honorDnt: services.config.privacy.honorDnt },
    automation: { compiled: services.rules.compiled, catalog: services.rules.purposes },
  };
}

/** Queues the confirmation emails of double opt-ins just committed; the job id makes a repeat harmless. */
export async function enqueueConfirmations(services: Pick<Services, 'queues'>, confirmationIds: readonly string[]): Promise<void> {
  for (const id of confirmationIds) {
    await services.queues.enqueue('email', 'confirmation', { confirmationId: id }, { jobId: `confirm-${id}` });
  }
}

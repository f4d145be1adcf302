import type { BatchDeps } from '../events/process-batch';
import { EventPartitions } from '../events/partitions';
import type { Services } from './services';

/** What processing a batch of events needs, from a process's services (the events worker and the consent API). */
export function batchDeps(services: Pick<Services, 'databases' | 'keys' | 'rules' | 'config'>): BatchDeps {
  const rules = services.rules;
  // Getters: a reload (SIGHUP, admin API) is seen by the next batch without rebuilding anything.
  return {
    databases: services.databases,
    keys: services.keys,
    get policy() {
      return rules.properties;
    },
    partitions: new EventPartitions(services.databases.db),
    consent: {
      get catalog() {
        return rules.purposes;
      },
      honorDnt: services.config.privacy.honorDnt,
    },
    automation: {
      get compiled() {
        return rules.compiled;
      },
      get catalog() {
        return rules.purposes;
      },
    },
  };
}

/** Queues the confirmation emails of double opt-ins just committed; the job id makes a repeat harmless. */
export async function enqueueConfirmations(services: Pick<Services, 'queues'>, confirmationIds: readonly string[]): Promise<void> {
  for (const id of confirmationIds) {
    await services.queues.enqueue('email', 'confirmation', { confirmationId: id }, { jobId: `confirm-${id}` });
  }
}

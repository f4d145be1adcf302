import { applyRetention } from '../engine/privacy/retention/apply';
import { retentionPolicy } from '../engine/privacy/retention/policy';
import { syncRetentionScheduler } from '../engine/privacy/retention/scheduler';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

/**
 * The maintenance worker: keeps the retention job scheduler in step with RETENTION_CRON and runs
 * retention at each tick, with the purposes of the rule set running at that moment.
 */
export function maintenanceHandlers(services: Services): JobHandlers<'maintenance'> {
  void syncRetentionScheduler(services.queues, services.config, services.log).catch((err: unknown) =>
    services.log.warn({ err }, 'retention scheduler not updated; it is again at the next start'),
  );
  return {
    retention: async (_payload, { log, signal }) => {
      const policy = retentionPolicy(services.config, services.rules.purposes);
      return applyRetention({ ...services, log }, policy, new Date(), { signal });
    },
  };
}

import { applyRetention } from '../engine/privacy/retention/apply';
import { retentionPolicy } from '../engine/privacy/retention/policy';
import { RETENTION_SCHEDULER_ID, syncRetentionScheduler } from '../engine/privacy/retention/scheduler';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';
import { watchSchedulers } from './scheduler-watch';

/**
 * The maintenance worker: keeps the retention job scheduler in step with RETENTION_CRON and runs
 * retention at each tick, with the purposes of the rule set running at that moment.
 */
export function maintenanceHandlers(services: Services): JobHandlers<'maintenance'> {
  void syncRetentionScheduler(services.queues, services.config, services.log).catch((err: unknown) =>
    services.log.warn({ err }, 'retention scheduler not updated; it is again at the next start'),
  );
  watchSchedulers(services, 'retention scheduler', async () => {
    if (!services.config.privacy.retention.cron) return;
    if ((await services.queues.schedulerIds('maintenance')).includes(RETENTION_SCHEDULER_ID)) return;
    services.log.warn('retention scheduler missing from Redis (data lost?); upserting it again');
    await syncRetentionScheduler(services.queues, services.config, services.log);
  });
  return {
    retention: async (_payload, { log, signal }) => {
      const policy = retentionPolicy(services.config, services.rules.purposes);
      return applyRetention({ ...services, log }, policy, new Date(), { signal });
    },
  };
}

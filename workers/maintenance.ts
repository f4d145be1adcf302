import { applyRetention } from '../engine/privacy/retention/apply';
import { retentionPolicy } from '../engine/privacy/retention/policy';
import { RETENTION_SCHEDULER_ID, syncRetentionScheduler } from '../engine/privacy/retention/scheduler';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

/** How often the worker checks that Redis still has the retention scheduler. */
const SCHEDULER_CHECK_MS = 60_000;

/**
 * The maintenance worker: keeps the retention job scheduler in step with RETENTION_CRON and runs
 * retention at each tick, with the purposes of the rule set running at that moment.
 */
export function maintenanceHandlers(services: Services): JobHandlers<'maintenance'> {
  void syncRetentionScheduler(services.queues, services.config, services.log).catch((err: unknown) =>
    services.log.warn({ err }, 'retention scheduler not updated; it is again at the next start'),
  );
  // The scheduler lives only in Redis: one lost with Redis's data (a flush, an empty failover) would
  // never be upserted again before the next start, and retention would stop (the broadcasts'
  // schedulers had the same gap: test/faults/redis-flush.fault.ts). Checked every minute.
  const check = async () => {
    try {
      if (!services.config.privacy.retention.cron) return;
      if ((await services.queues.schedulerIds('maintenance')).includes(RETENTION_SCHEDULER_ID)) return;
      services.log.warn('retention scheduler missing from Redis (data lost?); upserting it again');
      await syncRetentionScheduler(services.queues, services.config, services.log);
    } catch (err) {
      services.log.warn({ err }, 'retention scheduler not checked; again in a minute');
    }
  };
  const timer = setInterval(() => void check(), SCHEDULER_CHECK_MS);
  timer.unref();
  services.releasers.add('retention scheduler check', async () => clearInterval(timer));
  return {
    retention: async (_payload, { log, signal }) => {
      const policy = retentionPolicy(services.config, services.rules.purposes);
      return applyRetention({ ...services, log }, policy, new Date(), { signal });
    },
  };
}

import type { Services } from '../engine/runtime/services';

/** How often a worker checks that Redis still has the job schedulers it keeps. */
export const SCHEDULER_CHECK_MS = 60_000;

/**
 * Job schedulers live only in Redis: one lost with Redis's data (a flush, an empty failover) would
 * not be upserted again before the next start or rules reload, and its ticks would stop for good
 * (found by test/faults/redis-flush.fault.ts). `restore` looks for what is missing and upserts it
 * again; it runs every minute until the worker closes. A tick that fell due in between is missed,
 * as with any scheduler that was down.
 */
export function watchSchedulers(services: Services, what: string, restore: () => Promise<void>): void {
  const check = async () => {
    try {
      await restore();
    } catch (err) {
      services.log.warn({ err }, `${what} not checked; again in a minute`);
    }
  };
  const timer = setInterval(() => void check(), SCHEDULER_CHECK_MS);
  timer.unref();
  services.releasers.add(`${what} check`, async () => clearInterval(timer));
}

import type { Config } from '../../config';
import type { Logger } from '../../log/logger';
import type { Queues } from '../../queues/producer';

/** The one BullMQ job scheduler of the retention run: every process running `maintenance` upserts the same id. */
export const RETENTION_SCHEDULER_ID = 'retention';

/**
 * Makes the maintenance queue's retention scheduler match RETENTION_CRON (UTC): BullMQ adds one
 * job a tick however many processes keep the scheduler; `off` removes it.
 */
export async function syncRetentionScheduler(queues: Queues, config: Config, log: Logger): Promise<void> {
  const cron = config.privacy.retention.cron;
  if (cron) {
    await queues.upsertScheduler('maintenance', RETENTION_SCHEDULER_ID, { pattern: cron, tz: 'UTC' }, 'retention', {});
    log.debug({ cron }, 'retention scheduled');
  } else if ((await queues.schedulerIds('maintenance')).includes(RETENTION_SCHEDULER_ID)) {
    await queues.removeScheduler('maintenance', RETENTION_SCHEDULER_ID);
    log.info('retention schedule removed (RETENTION_CRON=off): run `consentflow retention run` from another scheduler');
  }
}

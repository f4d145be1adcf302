import { runDueAutomation } from '../engine/automation/run-automation';
import { relayOutbox } from '../engine/outbox/outbox';
import { relayAfterCommit } from '../engine/outbox/relay-after-commit';
import { applyPendingMerges } from '../engine/events/merges';
import { processEventBatch } from '../engine/events/process-batch';
import { batchDeps, enqueueConfirmations } from '../engine/runtime/batch';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

/** How often due journeys and segment rechecks are looked for (their timing precision). */
const AUTOMATION_TICK_MS = 10_000;
const TICK_PROFILES = 200;
const MAX_TICK_ROUNDS = 25;

/** The events worker: tracking events from the API become pseudonymous profiles, events and vault entries. */
export function eventsHandlers(services: Services): JobHandlers<'events'> {
  const deps = batchDeps(services);
  const separateVault = (services.databases.vaultDb as unknown) !== (services.databases.db as unknown);
  let lastSweep = 0;
  // Journeys whose wait is over and segments whose window slid: due work, claimed by one worker each.
  let ticking = false;
  const tick = async () => {
    if (ticking) return;
    ticking = true;
    try {
      // Short transactions of up to 200 people each, until nothing more is due (or a bound is hit,
      // so a large backlog leaves room for the next tick and the shutdown).
      for (let round = 0; round < MAX_TICK_ROUNDS; round++) {
        const done = await services.databases.db.transaction().execute((trx) => runDueAutomation(trx, deps.automation, new Date(), TICK_PROFILES));
        if (done.profiles > 0) services.log.debug(done, 'due journeys and segment rechecks processed');
        if (done.profiles < TICK_PROFILES) break;
      }
      // The outbox's reconciler: whatever a failed relay (or a lost Redis) left goes out now.
      await relayOutbox(services.databases.db, services.queues);
    } catch (err) {
      services.log.warn({ err }, 'due journeys and segment rechecks failed; retried at the next tick');
    } finally {
      ticking = false;
    }
  };
  const timer = setInterval(() => void tick(), AUTOMATION_TICK_MS);
  timer.unref();
  services.releasers.add('rules timer', async () => {
    clearInterval(timer);
  });
  return {
    ingest: async (payload, { log }) => {
      // Only a separate vault database can leave a merge half applied (after a crash between commits).
      if (separateVault && Date.now() - lastSweep > 60_000) {
        lastSweep = Date.now();
        const swept = await applyPendingMerges(services.databases);
        if (swept > 0) log.info({ merges: swept }, 'applied merges left pending by an interrupted batch');
      }
      const outcome = await processEventBatch(deps, payload.events);
      const committedAt = Date.now();
      for (const event of payload.events) services.metrics.eventProcessingSeconds.observe((committedAt - Date.parse(event.receivedAt)) / 1_000);
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
      await relayAfterCommit({ ...services, log }, outcome.automation?.outboxWritten ?? 0);
      if (outcome.automationFailed) log.error({ error: outcome.automationFailed }, 'the rules failed for this batch; its events are stored and the people marked for a re-check');
      log.debug(outcome, 'event batch processed');
      return outcome;
    },
  };
}

import { runWake } from '../engine/automation/run-automation';
import { relayAfterCommit } from '../engine/outbox/relay-after-commit';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

const EARLY_TOLERANCE_MS = 100;

/** The journeys worker: a wake-up relayed from the outbox advances that person's due journeys. */
export function journeysHandlers(services: Services): JobHandlers<'journeys'> {
  return {
    wake: async (payload, { log }) => {
      // A delayed job may fire a few ms early: within 100 ms, the journey acts at the time it was
      // due; earlier than that (a job added by hand), it acts at the real time, and nothing is due yet.
      const due = Date.parse(payload.wakeAt);
      const now = new Date(due - Date.now() <= EARLY_TOLERANCE_MS ? Math.max(Date.now(), due) : Date.now());
      const automation = { compiled: services.rules.compiled, catalog: services.rules.purposes };
      const outcome = await services.databases.db.transaction().execute((trx) => runWake(trx, automation, payload.enrolmentId, now));
      await relayAfterCommit({ ...services, log }, outcome?.outboxWritten ?? 0);
      return outcome ?? { skipped: 'the journey is no longer active' };
    },
  };
}

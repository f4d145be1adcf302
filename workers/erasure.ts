import { sql } from 'kysely';
import { runErasure } from '../engine/privacy/erasure/run-erasure';
import { relayOutbox } from '../engine/outbox/outbox';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

const SWEEP_EVERY_MS = 60_000;
/** A request untouched this long has lost its job (a Redis loss): it is put on the queue again. */
const STALLED_AFTER_MS = 10 * 60_000;

/**
 * The erasure worker: each job runs one request's steps (engine/privacy/erasure). Every minute it
 * also re-enqueues requests whose job was lost, and deletes tombstones that have expired.
 */
export function erasureHandlers(services: Services): JobHandlers<'erasure'> {
  const { databases, log } = services;
  const sweep = async () => {
    try {
      await relayOutbox(databases.db, services.queues);
      const stalled = await databases.db
        .selectFrom('app.erasure_requests')
        .select('id')
        .where('state', '<>', 'completed')
        .where('updated_at', '<', new Date(Date.now() - STALLED_AFTER_MS))
        .limit(100)
        .execute();
      for (const { id } of stalled) {
        const jobId = `erase-${id}`;
        const existing = await services.queues.queue('erasure').getJob(jobId);
        // A job that used up its attempts is kept failed: retried from here, where its step left it.
        if (existing && (await existing.isFailed())) await existing.remove();
        else if (existing) continue;
        await services.queues.enqueue('erasure', 'erase', { requestId: id }, { jobId });
      }
      await sql`delete from vault.erasure_tombstones where expires_at < now()`.execute(databases.vaultDb);
    } catch (err) {
      log.warn({ err }, 'erasure sweep failed; it runs again in a minute');
    }
  };
  const timer = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  timer.unref();
  services.releasers.add('erasure sweep', async () => clearInterval(timer));
  return {
    erase: async (payload, { log: jobLog }) => {
      const outcome = await runErasure({ ...services, log: jobLog }, payload.requestId);
      jobLog.info({ requestId: payload.requestId, outcome: outcome.outcome }, 'erasure request');
      return outcome.outcome === 'completed' ? { outcome: 'completed', clean: outcome.receipt.verification.clean } : outcome;
    },
  };
}

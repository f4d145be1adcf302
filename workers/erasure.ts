import { sql } from 'kysely';
import { createErasureGrouper } from '../engine/privacy/erasure/grouper';
import { runErasure } from '../engine/privacy/erasure/run-erasure';
import { runErasureGroup } from '../engine/privacy/erasure/run-group';
import { relayOutbox } from '../engine/outbox/outbox';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

const SWEEP_EVERY_MS = 60_000;
/** A request untouched this long has lost its job (a Redis loss): it is put on the queue again. */
const STALLED_AFTER_MS = 10 * 60_000;

/** The most requests one group takes (engine/privacy/erasure/run-group.ts). */
const MAX_GROUP = 50;

/**
 * The erasure worker: each job is one request (engine/privacy/erasure). The jobs running at once
 * in this process go through their steps together in groups (grouper.ts, run-group.ts); a job on
 * its second attempt or later runs alone, so a request that fails a group cannot fail it again.
 * Every minute it also re-enqueues requests whose job was lost, and deletes tombstones that have expired.
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
  const grouper = createErasureGrouper(async (ids) => {
    log.info({ requests: ids.length }, 'erasure group');
    return runErasureGroup(services, ids);
  }, MAX_GROUP);
  return {
    erase: async (payload, { job, log: jobLog }) => {
      const outcome = job.attemptsMade > 0 ? await runErasure({ ...services, log: jobLog }, payload.requestId) : await grouper.run(payload.requestId);
      jobLog.info({ requestId: payload.requestId, outcome: outcome.outcome }, 'erasure request');
      return outcome.outcome === 'completed' ? { outcome: 'completed', clean: outcome.receipt.verification.clean } : outcome;
    },
  };
}

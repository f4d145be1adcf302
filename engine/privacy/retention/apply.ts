import type { Config, Keys } from '../../config';
import type { Databases } from '../../db/connect';
import type { Logger } from '../../log/logger';
import { relayOutbox } from '../../outbox/outbox';
import type { Queues } from '../../queues/producer';
import { createErasureRequest } from '../erasure/request';
import { type Cutoffs, cutoffsAt } from './cutoffs';
import { dropEventPartition, listEventPartitions, partitionsBefore } from './event-partitions';
import type { RetentionPolicy } from './policy';
import {
  deleteExpiredConfirmations,
  deleteExpiredDecisions,
  deleteExpiredSegmentStates,
  inactiveProfilesPage,
  isInactive,
  type ProfileKey,
} from './statements';

/**
 * One retention run (GDPR Art. 5(1)(e)): drops the event partitions past the cutoff, deletes the
 * rows purposes no longer justify, and puts inactive profiles up for erasure through the erasure
 * path (engine/privacy/erasure: every store, verified, with a receipt). Each step is idempotent and
 * safe next to a second run: a partition is dropped under a lock and re-checked, deletes re-read
 * their predicate, and an erasure request already open for the person is returned, not doubled.
 */

export interface RetentionDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly databases: Databases;
  readonly queues: Queues;
  readonly log: Logger;
}

export interface RetentionOptions {
  /** Stops between chunks (the job's timeout, a shutdown); what is done stays done. */
  readonly signal?: AbortSignal;
  /** Rows a delete statement removes at most (short transactions, short locks). */
  readonly chunk?: number;
  /** Profiles read a page. */
  readonly pageSize?: number;
}

export interface RetentionOutcome {
  readonly at: string;
  readonly partitionsDropped: readonly string[];
  /** From the planner's statistics where the partition was analyzed (pg_class.reltuples). */
  readonly eventRowsDropped: number;
  /** Partitions whose lock was not had in time: they go at the next run. */
  readonly partitionsBusy: readonly string[];
  readonly decisionsDeleted: number;
  readonly confirmationsDeleted: number;
  readonly segmentStatesDeleted: number;
  readonly erasuresRequested: number;
  /** Inactive profiles whose erasure was already under way. */
  readonly erasuresAlreadyOpen: number;
  /** Inactive profiles the vault knows no identifier of: the erasure path cannot take them. */
  readonly profilesNotErasable: number;
  /** Stopped early by the signal; the next run goes on. */
  readonly stopped: boolean;
}

// 40P01 deadlock_detected: a delete meeting the events worker on the same rows; that chunk again.
const DEADLOCK = '40P01';

async function deleteInChunks(remove: () => Promise<number>, chunk: number, signal: AbortSignal | undefined): Promise<number> {
  let total = 0;
  let deadlocks = 0;
  while (!signal?.aborted) {
    let n: number;
    try {
      n = await remove();
    } catch (err) {
      if ((err as { code?: unknown }).code === DEADLOCK && ++deadlocks <= 3) continue;
      throw err;
    }
    total += n;
    if (n < chunk) break;
  }
  return total;
}

async function requestErasures(
  deps: RetentionDeps,
  c: Cutoffs,
  policy: RetentionPolicy,
  pageSize: number,
  signal: AbortSignal | undefined,
): Promise<{ requested: number; alreadyOpen: number; notErasable: number }> {
  const db = deps.databases.db;
  let requested = 0;
  let alreadyOpen = 0;
  let notErasable = 0;
  // Bounded: a run asks for at most batchSize erasures, and reads at most ten times as many
  // profiles (when most of them are already under way, e.g. while the erasure worker is down).
  let budget = policy.batchSize * 10;
  let after: ProfileKey | undefined;
  while (requested < policy.batchSize && budget > 0 && !signal?.aborted) {
    const page = await inactiveProfilesPage(db, c, after, Math.min(pageSize, budget));
    if (page.length === 0) break;
    budget -= page.length;
    for (const profile of page) {
      if (requested >= policy.batchSize || signal?.aborted) break;
      // Seen again (or enrolled) since the page was read: no longer inactive.
      if (!(await isInactive(db, c, profile.id))) continue;
      const result = await createErasureRequest(deps.databases, deps.config, deps.keys, {
        identifier: { profileId: profile.id },
        origin: 'retention',
        requestedBy: 'retention policy',
      });
      if (!result.ok) notErasable++;
      else if (result.created) requested++;
      else alreadyOpen++;
    }
    after = page[page.length - 1];
  }
  return { requested, alreadyOpen, notErasable };
}

/** Puts the new erasure requests on the queue now; if Redis is away, the erasure worker's sweep does later. */
async function relay(deps: RetentionDeps): Promise<void> {
  try {
    while ((await relayOutbox(deps.databases.db, deps.queues)) >= 500);
  } catch (err) {
    deps.log.warn({ err }, 'outbox relay after retention failed; the erasure worker relays the requests later');
  }
}

export async function applyRetention(deps: RetentionDeps, policy: RetentionPolicy, now = new Date(), options: RetentionOptions = {}): Promise<RetentionOutcome> {
  const { signal } = options;
  const chunk = options.chunk ?? 5_000;
  const db = deps.databases.db;
  const c = cutoffsAt(policy, now);

  const dropped: string[] = [];
  const busy: string[] = [];
  let eventRows = 0;
  for (const partition of partitionsBefore(await listEventPartitions(db), c.events.cutoff, now)) {
    if (signal?.aborted) break;
    const outcome = await dropEventPartition(db, partition.name);
    if (outcome === 'dropped') {
      dropped.push(partition.name);
      eventRows += partition.rows;
    } else if (outcome === 'busy') busy.push(partition.name);
  }

  const decisionsDeleted = await deleteInChunks(() => deleteExpiredDecisions(db, c, chunk), chunk, signal);
  const confirmationsDeleted = await deleteInChunks(() => deleteExpiredConfirmations(db, c, chunk), chunk, signal);
  const segmentStatesDeleted = await deleteInChunks(() => deleteExpiredSegmentStates(db, c, chunk), chunk, signal);

  const erasures = await requestErasures(deps, c, policy, options.pageSize ?? 200, signal);
  if (erasures.requested > 0) await relay(deps);

  const outcome: RetentionOutcome = {
    at: now.toISOString(),
    partitionsDropped: dropped,
    eventRowsDropped: eventRows,
    partitionsBusy: busy,
    decisionsDeleted,
    confirmationsDeleted,
    segmentStatesDeleted,
    erasuresRequested: erasures.requested,
    erasuresAlreadyOpen: erasures.alreadyOpen,
    profilesNotErasable: erasures.notErasable,
    stopped: signal?.aborted ?? false,
  };
  // Counts and partition names only: nothing about any person (DESIGN.md invariant 1).
  deps.log.info({ retention: outcome }, 'retention run');
  return outcome;
}

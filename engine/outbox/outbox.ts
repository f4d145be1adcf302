import { sql } from 'kysely';
import type { Db, DbOrTrx } from '../db/types';
import type { JobName, JobPayload, QueueName } from '../queues/catalog';
import type { Queues } from '../queues/producer';

/**
 * The transactional outbox (DESIGN.md "Stores"): a job that must follow a commit is written in the
 * same transaction, then relayed to Redis. BullMQ job ids are deterministic, so relaying twice adds
 * one job; a row is marked relayed only once Redis acknowledged it.
 */

export interface OutboxEntry<Q extends QueueName, J extends JobName<Q>> {
  readonly queue: Q;
  readonly job: J;
  /** Deterministic: the same work always has the same id (no ':', which BullMQ reserves). */
  readonly jobId: string;
  readonly payload: JobPayload<Q, J>;
  readonly runAt: Date;
}

/** Any entry of the catalog: one list may mix queues (a page's sends and wake-ups). */
export type AnyOutboxEntry = { [Q in QueueName]: { [J in JobName<Q>]: OutboxEntry<Q, J> }[JobName<Q>] }[QueueName];

/** One statement for any number of rows, as one JSON parameter (not one a value: a broadcast page writes thousands). */
export async function addToOutbox(db: DbOrTrx, entries: ReadonlyArray<AnyOutboxEntry>): Promise<void> {
  if (entries.length === 0) return;
  const rows = entries.map((e) => ({ q: e.queue, n: e.job, j: e.jobId, p: e.payload, r: e.runAt }));
  await sql`insert into app.outbox (queue, job_name, job_id, payload, run_at)
    select q, n, j, p, r from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(q text, n text, j text, p jsonb, r timestamptz)`.execute(db);
}

export interface RelayOptions {
  /** Most rows relayed (default 500). */
  readonly limit?: number;
  /**
   * Whether to delete rows relayed more than a day ago (default true). The relay right after a
   * commit leaves it to the reconciler: the lookup has no index and need not run after every page.
   */
  readonly prune?: boolean;
}

/**
 * Puts unrelayed rows on their queues (delayed until run_at), oldest first, in one transaction that
 * claims them with SKIP LOCKED: several relays share the work; a failed enqueue leaves them for the
 * next relay.
 */
export async function relayOutbox(db: Db, queues: Queues, now = new Date(), { limit = 500, prune = true }: RelayOptions = {}): Promise<number> {
  return db.transaction().execute(async (trx) => {
    // Claimed and marked in one statement: the rows stay locked until the jobs are in Redis and the
    // transaction commits; a failed enqueue rolls the mark back.
    const claimed = await sql<{ id: string; queue: string; job_name: string; job_id: string; payload: Record<string, unknown>; run_at: Date }>`
      update app.outbox set relayed_at = ${now} where id in (
        select id from app.outbox where relayed_at is null order by id limit ${limit} for update skip locked)
      returning id, queue, job_name, job_id, payload, run_at`.execute(trx);
    if (claimed.rows.length === 0) return 0;
    const rows = claimed.rows.sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)));
    // One pipelined round trip per queue and job name, not one per row (a broadcast page writes
    // thousands of rows). BullMQ fires a delayed job at its add time plus its delay, so the delay is
    // computed from the clock just before each group goes, not from `now`: jobs of a long relay
    // would otherwise fire late by however long the relay took.
    const groups = new Map<string, typeof rows>();
    for (const row of rows) {
      const key = `${row.queue}\0${row.job_name}`;
      const group = groups.get(key);
      if (group) group.push(row);
      else groups.set(key, [row]);
    }
    for (const group of groups.values()) {
      const first = group[0]!;
      const sentAt = Date.now();
      await queues.enqueueBulk(
        first.queue as QueueName,
        first.job_name as never,
        group.map((row) => ({ payload: row.payload as never, options: { jobId: row.job_id, delayMs: Math.max(0, row.run_at.getTime() - sentAt) } })),
      );
    }
    // Relayed rows are kept a day (to see what went out), then go.
    if (prune) {
      await sql`delete from app.outbox where id in (
        select id from app.outbox where relayed_at < ${new Date(now.getTime() - 86_400_000)} limit 1000)`.execute(trx);
    }
    return rows.length;
  });
}

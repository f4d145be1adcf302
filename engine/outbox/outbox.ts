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

export async function addToOutbox<Q extends QueueName, J extends JobName<Q>>(db: DbOrTrx, entries: ReadonlyArray<OutboxEntry<Q, J>>): Promise<void> {
  if (entries.length === 0) return;
  await db
    .insertInto('app.outbox')
    .values(entries.map((e) => ({ queue: e.queue, job_name: e.job, job_id: e.jobId, payload: JSON.stringify(e.payload), run_at: e.runAt, relayed_at: null })))
    .execute();
}

/**
 * Puts unrelayed rows on their queues (delayed until run_at), in one transaction that claims them
 * with SKIP LOCKED: several relays share the work; a failed enqueue leaves them for the next relay.
 */
export async function relayOutbox(db: Db, queues: Queues, now = new Date(), limit = 500): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const rows = await sql<{ id: string; queue: string; job_name: string; job_id: string; payload: Record<string, unknown>; run_at: Date }>`
      select id, queue, job_name, job_id, payload, run_at from app.outbox
      where relayed_at is null order by id limit ${limit} for update skip locked`.execute(trx);
    if (rows.rows.length === 0) return 0;
    // One pipelined round trip per queue and job name, not one per row (a broadcast page writes a
    // thousand rows). BullMQ fires a delayed job at its add time plus its delay, so the delay is
    // computed from the clock just before each group goes, not from `now`: jobs of a long relay
    // would otherwise fire late by however long the relay took.
    const groups = new Map<string, typeof rows.rows>();
    for (const row of rows.rows) {
      const key = `${row.queue}\0${row.job_name}`;
      groups.set(key, [...(groups.get(key) ?? []), row]);
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
    await trx.updateTable('app.outbox').set({ relayed_at: now }).where('id', 'in', rows.rows.map((r) => r.id)).execute();
    // Relayed rows are kept a day (to see what went out), then go.
    await sql`delete from app.outbox where id in (
      select id from app.outbox where relayed_at < ${new Date(now.getTime() - 86_400_000)} limit 1000)`.execute(trx);
    return rows.rows.length;
  });
}

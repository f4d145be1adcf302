import { sql } from 'kysely';
import type { Db, DbOrTrx } from '../../db/types';

/**
 * The monthly partitions of app.events (engine/events/partitions.ts names them `events_YYYY_MM`,
 * from the first of the month to the first of the next, UTC), as retention sees them: a partition
 * goes whole, by DDL, which costs the same for ten rows or ten million and leaves no dead tuples.
 */

export interface EventPartition {
  /** `events_2025_09`, in schema app. */
  readonly name: string;
  readonly from: Date;
  /** Exclusive: the first instant of the next month. */
  readonly to: Date;
  readonly rows: number;
  /** From the planner's statistics (pg_class.reltuples); false: counted, the table was never analyzed. */
  readonly estimated: boolean;
}

const NAME = /^events_(\d{4})_(\d{2})$/;

/** The partitions attached to app.events, oldest first. */
export async function listEventPartitions(db: DbOrTrx): Promise<EventPartition[]> {
  const { rows } = await sql<{ name: string; reltuples: number }>`
    select c.relname as name, c.reltuples::float8 as reltuples
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    join pg_namespace cn on cn.oid = c.relnamespace
    where i.inhparent = 'app.events'::regclass and cn.nspname = 'app'
    order by c.relname`.execute(db);
  const out: EventPartition[] = [];
  for (const row of rows) {
    const match = NAME.exec(row.name);
    if (!match) continue; // not one of the engine's: an operator's own partition is theirs to manage
    const year = Number(match[1]);
    const month = Number(match[2]) - 1;
    let rows = Math.max(0, Math.round(Number(row.reltuples)));
    let estimated = true;
    // -1: never vacuumed or analyzed (a young partition, or embedded PostgreSQL without autovacuum).
    if (Number(row.reltuples) < 0) {
      // Through the parent, pruned to the month: a partition that a concurrent run has just dropped
      // counts 0 instead of failing the statement.
      const from = new Date(Date.UTC(year, month, 1));
      const to = new Date(Date.UTC(year, month + 1, 1));
      const counted = await sql<{ n: string }>`select count(*)::text as n from app.events where occurred_at >= ${from} and occurred_at < ${to}`.execute(db);
      rows = Number(counted.rows[0]?.n ?? 0);
      estimated = false;
    }
    out.push({ name: row.name, from: new Date(Date.UTC(year, month, 1)), to: new Date(Date.UTC(year, month + 1, 1)), rows, estimated });
  }
  return out;
}

/**
 * Partitions wholly before the cutoff. The boundary month (the one the cutoff falls in) stays until
 * all of it is past; the current month, and any later one, never goes, whatever the cutoff.
 */
export function partitionsBefore(partitions: readonly EventPartition[], cutoff: Date, now: Date): EventPartition[] {
  const thisMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  return partitions.filter((p) => p.to <= cutoff && p.to <= thisMonth);
}

export type DropOutcome = 'dropped' | 'gone' | 'busy';

/**
 * DETACH, then DROP, in one transaction, under the advisory lock the events worker takes to create
 * partitions: a second process dropping the same partition waits, then finds it gone. DETACH locks
 * app.events for a moment; a lock not had within 5 s (a long query on app.events) gives up, and the
 * partition goes at the next run, rather than stalling ingestion behind a queue of locks.
 */
export async function dropEventPartition(db: Db, name: string): Promise<DropOutcome> {
  if (!NAME.test(name)) throw new Error(`not an event partition: ${name}`);
  try {
    return await db.transaction().execute(async (trx) => {
      await sql`set local lock_timeout = '5s'`.execute(trx);
      await sql`select pg_advisory_xact_lock(hashtext('consentflow:event-partitions'))`.execute(trx);
      const attached = await sql<{ one: number }>`
        select 1 as one from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_namespace n on n.oid = c.relnamespace
        where i.inhparent = 'app.events'::regclass and n.nspname = 'app' and c.relname = ${name}`.execute(trx);
      if (attached.rows.length === 0) return 'gone' as const;
      await sql`alter table app.events detach partition ${sql.table(`app.${name}`)}`.execute(trx);
      await sql`drop table ${sql.table(`app.${name}`)}`.execute(trx);
      return 'dropped' as const;
    });
  } catch (err) {
    // 55P03 lock_not_available: the lock timeout above.
    if ((err as { code?: unknown }).code === '55P03') return 'busy';
    throw err;
  }
}

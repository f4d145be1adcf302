import { sql } from 'kysely';
import type { Db } from '../db/types';

/** `2026-11` → the partition for November 2026. */
function monthKey(date: Date): string {
  return `${date.getUTCFullYear()}-${String(date.getUTCMonth() + 1).padStart(2, '0')}`;
}

/**
 * Creates the monthly partitions of app.events that a batch needs, once per process per month.
 * Runs outside the batch's transaction (DDL would otherwise hold its lock for the whole batch) and
 * under an advisory lock, so concurrent workers do not race on `create table`.
 */
export class EventPartitions {
  private readonly known = new Set<string>();

  constructor(private readonly db: Db) {}

  async ensure(dates: Iterable<Date>): Promise<void> {
    const missing = new Map<string, Date>();
    for (const date of dates) {
      const key = monthKey(date);
      if (!this.known.has(key)) missing.set(key, date);
    }
    if (missing.size === 0) return;
    await this.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(hashtext('consentflow:event-partitions'))`.execute(trx);
      for (const [key, date] of missing) {
        const from = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
        const to = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1));
        const name = `events_${key.replace('-', '_')}`;
        await sql`create table if not exists ${sql.table(`app.${name}`)} partition of app.events
          for values from (${sql.lit(from.toISOString())}) to (${sql.lit(to.toISOString())})`.execute(trx);
      }
    });
    for (const key of missing.keys()) this.known.add(key);
  }
}

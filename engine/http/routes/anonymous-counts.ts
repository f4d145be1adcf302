import { sql } from 'kysely';
import type { DbOrTrx, EventType } from '../../db/types';
import { scrubText } from '../../privacy/scrub-text';
import { MicroBatcher } from '../../runtime/micro-batcher';

/** One anonymous event as counted: no person, no time of day, no property. */
export interface CountedEvent {
  readonly sourceId: string;
  readonly type: EventType;
  readonly name: string;
  readonly at: Date;
}

type CountRow = { day: string; source_id: string; type: EventType; name: string; count: number };

/** The events of one flush as counter rows: one per (day, source, type, name), keys sorted. */
function countRows(events: readonly CountedEvent[]): CountRow[] {
  const counts = new Map<string, CountRow>();
  for (const e of events) {
    const day = e.at.toISOString().slice(0, 10);
    // The name is the site's free text: scrubbed as the events worker scrubs stored names.
    const name = scrubText(e.name).slice(0, 200);
    const key = `${day}\u0000${e.sourceId}\u0000${e.type}\u0000${name}`;
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { day, source_id: e.sourceId, type: e.type, name, count: 1 });
  }
  // Keys sorted so that concurrent flushes (other API processes, the events worker) cannot deadlock.
  return [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, row]) => row);
}

/**
 * Gathers the anonymous events of concurrent requests and adds them to `app.event_counts` in one
 * upsert per flush (engine/runtime/micro-batcher.ts), so a busy page's counter row is written once
 * per flush, not once per visitor. Each request answers 2xx only once PostgreSQL committed its
 * events (DESIGN.md: never a false 2xx).
 */
export class CountBatcher extends MicroBatcher<CountedEvent> {
  constructor(db: DbOrTrx, maxDelayMs = 20, maxEvents = 500) {
    super(
      async (events) => {
        const rows = countRows(events);
        if (rows.length === 0) return;
        await db
          .insertInto('app.event_counts')
          .values(rows)
          .onConflict((oc) => oc.columns(['day', 'source_id', 'type', 'name']).doUpdateSet({ count: sql`app.event_counts.count + excluded.count` }))
          .execute();
      },
      { maxItems: maxEvents, maxDelayMs },
    );
  }
}

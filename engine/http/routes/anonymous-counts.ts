import { sql } from 'kysely';
import type { DbOrTrx, EventType } from '../../db/types';
import { scrubText } from '../../privacy/scrub-text';

/** One anonymous event as counted: no person, no time of day, no property. */
export interface CountedEvent {
  readonly sourceId: string;
  readonly type: EventType;
  readonly name: string;
  readonly at: Date;
}

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Gathers the anonymous events of concurrent requests and adds them to `app.event_counts` in one
 * upsert per flush, so a busy page's counter row is written once per flush, not once per visitor.
 * Each request waits for the flush that carries its events: it answers 2xx only once PostgreSQL
 * committed them (DESIGN.md: never a false 2xx).
 */
export class CountBatcher {
  private counts = new Map<string, { day: string; source_id: string; type: EventType; name: string; count: number }>();
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly db: DbOrTrx,
    private readonly maxDelayMs = 20,
    private readonly maxKeys = 500,
  ) {}

  submit(events: readonly CountedEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      for (const e of events) {
        const day = e.at.toISOString().slice(0, 10);
        // The name is the site's free text: scrubbed as the events worker scrubs stored names.
        const name = scrubText(e.name).slice(0, 200);
        const key = `${day}\u0000${e.sourceId}\u0000${e.type}\u0000${name}`;
        const entry = this.counts.get(key);
        if (entry) entry.count++;
        else this.counts.set(key, { day, source_id: e.sourceId, type: e.type, name, count: 1 });
      }
      this.waiting.push({ resolve, reject });
      if (this.counts.size >= this.maxKeys) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxDelayMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const counts = this.counts;
    const waiting = this.waiting;
    this.counts = new Map();
    this.waiting = [];
    if (waiting.length === 0) return;
    // Keys sorted so that concurrent flushes (other API processes, the events worker) cannot deadlock.
    const rows = [...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, row]) => row);
    const done = this.db
      .insertInto('app.event_counts')
      .values(rows)
      .onConflict((oc) => oc.columns(['day', 'source_id', 'type', 'name']).doUpdateSet({ count: sql`app.event_counts.count + excluded.count` }))
      .execute()
      .then(
        () => {
          for (const w of waiting) w.resolve();
        },
        (err: unknown) => {
          for (const w of waiting) w.reject(err);
        },
      );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /** Writes what is waiting and waits for every flush under way (shutdown). */
  async drain(): Promise<void> {
    this.flush();
    await Promise.all([...this.inFlight]);
  }
}

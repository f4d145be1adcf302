/**
 * Newsletter subscribers for the benchmarks that send email (bench:email, bench:delayed-sends): people
 * stored through processEventBatch, as the events worker stores them (an address and a first name in
 * the vault), then given consent to email marketing and membership of newsletter_subscribers by SQL,
 * as the broadcast tests set them up (each of those paths has its own tests and benchmarks).
 */
import { sql } from 'kysely';
import { processEventBatch } from '../../engine/events/process-batch';
import { createSource } from '../../engine/ingest/sources';
import { batchDeps } from '../../engine/runtime/batch';
import type { Services } from '../../engine/runtime/services';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';

/**
 * N people with an address (and a first name) in the vault, consent to email marketing, on the
 * newsletter list; `subscriber-<i>@example.com`. Returns the seconds it took.
 */
export async function seedSubscribers(services: Services, n: number, sourceName = 'bench email'): Promise<number> {
  const started = performance.now();
  const db = services.databases.db;
  const source = await createSource(db, sourceName);
  const deps = batchDeps(services);
  const now = new Date().toISOString();
  for (let from = 0; from < n; from += 1_000) {
    const batch: AcceptedEvent[] = Array.from({ length: Math.min(1_000, n - from) }, (_, i) => ({
      sourceId: source.id,
      messageId: `subscriber-${from + i}`,
      receivedAt: now,
      occurredAt: now,
      signals: { gpc: false, dnt: false },
      event: { type: 'identify', userId: `subscriber-${from + i}`, traits: { email: `subscriber-${from + i}@example.com`, firstName: 'Ada' } } as SegmentEvent,
    }));
    await processEventBatch(deps, batch);
  }
  // Consent and membership as the broadcast test sets them up (each has its own tests).
  await sql`insert into app.consent_ledger (profile_id, purpose, decision, occurred_at, source_kind, method)
    select id, 'email_marketing', 'granted', now(), 'admin', 'admin' from app.profiles`.execute(db);
  await sql`insert into app.segment_state (profile_id, segment_id, member, changed_at)
    select id, 'newsletter_subscribers', true, now() from app.profiles
    on conflict (profile_id, segment_id) do update set member = true`.execute(db);
  return (performance.now() - started) / 1_000;
}

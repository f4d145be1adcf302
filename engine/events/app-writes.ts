import { sql } from 'kysely';
import { copyLedgerOnMerge } from '../consent/ledger';
import type { DbOrTrx, EventType, TraitValue } from '../db/types';

export interface ProfileUpsert {
  readonly id: string;
  readonly sourceId: string;
  readonly lastSeenAt: Date;
  readonly traits: Record<string, TraitValue>;
}

/** Creates or touches profiles; newer traits replace older ones key by key. */
export async function upsertProfiles(db: DbOrTrx, profiles: readonly ProfileUpsert[]): Promise<void> {
  if (profiles.length === 0) return;
  await db
    .insertInto('app.profiles')
    // Sorted, so concurrent batches lock shared rows in one order and cannot deadlock on them.
    .values(
      [...profiles]
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((p) => ({ id: p.id, source_id: p.sourceId, last_seen_at: p.lastSeenAt, traits: JSON.stringify(p.traits) })),
    )
    .onConflict((oc) =>
      oc.column('id').doUpdateSet({
        last_seen_at: sql`greatest(app.profiles.last_seen_at, excluded.last_seen_at)`,
        traits: sql`app.profiles.traits || excluded.traits`,
        updated_at: sql`now()`,
      }),
    )
    .execute();
}

/**
 * Applies merges to the pseudonymous side: the loser's events, consent history, decisions and journeys move to the winner, its traits fill
 * the winner's gaps, and the loser's row goes. Idempotent, so a merge can be applied again after a
 * crash between the vault's commit and this one.
 */
export async function applyProfileMerges(db: DbOrTrx, merges: ReadonlyArray<{ loser: string; winner: string }>): Promise<void> {
  for (const { loser, winner } of merges) {
    await db.updateTable('app.events').set({ profile_id: winner }).where('profile_id', '=', loser).execute();
    await copyLedgerOnMerge(db, loser, winner);
    await db.updateTable('app.consent_confirmations').set({ profile_id: winner }).where('profile_id', '=', loser).execute();
    await db.updateTable('app.decisions').set({ profile_id: winner }).where('profile_id', '=', loser).execute();
    await moveJourneys(db, loser, winner);
    await sql`update app.profiles w
      set traits = l.traits || w.traits, last_seen_at = greatest(w.last_seen_at, l.last_seen_at),
          created_at = least(w.created_at, l.created_at), updated_at = now()
      from app.profiles l where w.id = ${winner} and l.id = ${loser}`.execute(db);
    await db.deleteFrom('app.profiles').where('id', '=', loser).execute();
  }
}

/**
 * The loser's journeys go with it: a journey the winner already runs in the same campaign ends (its
 * sends cancelled), the others move, renumbered after the winner's entries; scheduled sends follow;
 * segment rows move where the winner has none (the winner is re-evaluated in the same batch).
 */
async function moveJourneys(db: DbOrTrx, loser: string, winner: string): Promise<void> {
  const reason = 'merged into a profile already in this campaign';
  const duplicates = await sql<{ id: string }>`
    update app.enrolments l set state = 'ended', finished_at = now(), finish_reason = ${reason}, wake_at = null
    where l.profile_id = ${loser} and l.state = 'active'
      and exists (select 1 from app.enrolments w where w.profile_id = ${winner} and w.campaign_id = l.campaign_id and w.state = 'active')
    returning l.id`.execute(db);
  if (duplicates.rows.length > 0) {
    await db
      .updateTable('app.scheduled_sends')
      .set({ state: 'cancelled', state_reason: reason })
      .where('enrolment_id', 'in', duplicates.rows.map((r) => r.id))
      .where('state', '=', 'scheduled')
      .execute();
  }
  await sql`update app.enrolments l
    set profile_id = ${winner},
        entry = l.entry + coalesce((select max(w.entry) from app.enrolments w where w.profile_id = ${winner} and w.campaign_id = l.campaign_id), 0)
    where l.profile_id = ${loser}`.execute(db);
  await db.updateTable('app.scheduled_sends').set({ profile_id: winner }).where('profile_id', '=', loser).execute();
  await sql`insert into app.segment_state (profile_id, segment_id, member, changed_at, recheck_at)
    select ${winner}, segment_id, member, changed_at, now() from app.segment_state where profile_id = ${loser}
    on conflict (profile_id, segment_id) do nothing`.execute(db);
  await db.deleteFrom('app.segment_state').where('profile_id', '=', loser).execute();
}

export interface EventRow {
  readonly profileId: string | null;
  readonly sourceId: string;
  readonly messageId: string;
  readonly type: EventType;
  readonly name: string | null;
  readonly occurredAt: Date;
  readonly receivedAt: Date;
  readonly properties: Record<string, unknown>;
  readonly context: Record<string, unknown>;
}

export async function insertEvents(db: DbOrTrx, rows: readonly EventRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('app.events')
    .values(
      rows.map((r) => ({
        profile_id: r.profileId,
        source_id: r.sourceId,
        message_id: r.messageId,
        type: r.type,
        name: r.name,
        occurred_at: r.occurredAt,
        received_at: r.receivedAt,
        properties: JSON.stringify(r.properties),
        context: JSON.stringify(r.context),
      })),
    )
    .execute();
}

/** Records (source, messageId) pairs; returns the ones seen for the first time (invariant 6). */
export async function claimReceipts(
  db: DbOrTrx,
  receipts: ReadonlyArray<{ sourceId: string; messageId: string; receivedAt: Date }>,
): Promise<Set<string>> {
  if (receipts.length === 0) return new Set();
  const rows = await db
    .insertInto('app.event_receipts')
    // Sorted for the same reason as profiles: a replayed batch racing its original waits, never deadlocks.
    .values(
      [...receipts]
        .sort((a, b) => (a.sourceId === b.sourceId ? (a.messageId < b.messageId ? -1 : 1) : a.sourceId < b.sourceId ? -1 : 1))
        .map((r) => ({ source_id: r.sourceId, message_id: r.messageId, received_at: r.receivedAt })),
    )
    .onConflict((oc) => oc.columns(['source_id', 'message_id']).doNothing())
    .returning(['source_id', 'message_id'])
    .execute();
  return new Set(rows.map((r) => `${r.source_id}\u0000${r.message_id}`));
}

/**
 * Events that may not be tied to a person, kept as counts per (day, source, type, name): no row,
 * no time of day, no context. Keys sorted so concurrent batches cannot deadlock on them.
 */
export async function countEvents(db: DbOrTrx, rows: readonly EventRow[]): Promise<void> {
  if (rows.length === 0) return;
  const counts = new Map<string, { day: string; source_id: string; type: EventType; name: string; count: number }>();
  for (const r of rows) {
    const day = r.occurredAt.toISOString().slice(0, 10);
    const name = r.name ?? '';
    const key = `${day}\u0000${r.sourceId}\u0000${r.type}\u0000${name}`;
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { day, source_id: r.sourceId, type: r.type, name, count: 1 });
  }
  await db
    .insertInto('app.event_counts')
    .values([...counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v))
    .onConflict((oc) => oc.columns(['day', 'source_id', 'type', 'name']).doUpdateSet({ count: sql`app.event_counts.count + excluded.count` }))
    .execute();
}

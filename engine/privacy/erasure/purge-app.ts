import { sql, type Transaction } from 'kysely';
import type { Database } from '../../db/types';
import { lockProfileRows } from '../../db/profile-locks';
import { lockProfiles } from '../../events/merges';
import { receiptMessageId } from '../../events/rows';

/**
 * Step 3: every pseudonymous row of the person in schema `app`, by index on the profile id (cost
 * grows with the person's data, not the tables'). Runs in the caller's transaction, which also
 * records the step, so it happens once and whole. The consent ledger is append-only except for
 * erasure, which says so for this transaction (migration 0003).
 */

export interface AppPurge {
  readonly counts: Record<string, number>;
  readonly sendIds: string[];
  readonly enrolmentIds: string[];
  readonly confirmationIds: string[];
  readonly jobs: Array<{ queue: string; id: string }>;
}

/** The uuid just below `id`: a keyset cursor that skips exactly the same rows once `id` is gone. */
export function uuidBefore(id: string): string {
  const n = BigInt(`0x${id.replace(/-/g, '')}`);
  const hex = (n === 0n ? 0n : n - 1n).toString(16).padStart(32, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export async function purgeApp(trx: Transaction<Database>, pseudonymKey: Buffer, profileIds: readonly string[]): Promise<AppPurge> {
  const ids = [...profileIds];
  if (ids.length === 0) return { counts: {}, sendIds: [], enrolmentIds: [], confirmationIds: [], jobs: [] };
  await sql`set local consentflow.erasure = 'on'`.execute(trx);
  // The locks every path that acts on a person takes: a batch, the tick or a send in flight for them
  // finishes first, and what it wrote is deleted here.
  await lockProfiles(trx, ids);
  await lockProfileRows(trx, ids);

  const sends = await trx.selectFrom('app.scheduled_sends').select(['id', 'due_at', 'deferred_from']).where('profile_id', 'in', ids).forUpdate().execute();
  const enrolments = await trx.selectFrom('app.enrolments').select(['id', 'wake_at']).where('profile_id', 'in', ids).forUpdate().execute();
  const confirmations = await trx.selectFrom('app.consent_confirmations').select('id').where('profile_id', 'in', ids).execute();
  const sendIds = sends.map((s) => s.id);
  const enrolmentIds = enrolments.map((e) => e.id);
  const outbox = await sql<{ id: string; queue: string; job_id: string }>`
    select id, queue, job_id from app.outbox
    where (payload ? 'sendId' and payload ->> 'sendId' = any(${sendIds}::text[]))
       or (payload ? 'enrolmentId' and payload ->> 'enrolmentId' = any(${enrolmentIds}::text[]))`.execute(trx);

  // Job ids follow from the rows (engine/automation/journeys-store.ts, send-step.ts, runtime/batch.ts);
  // the outbox names any other the person had.
  const jobs = new Map<string, { queue: string; id: string }>();
  const job = (queue: string, id: string) => jobs.set(`${queue}/${id}`, { queue, id });
  for (const s of sends) {
    job('email', `send-${s.id}`);
    if (s.deferred_from) job('email', `send-${s.id}-${s.due_at.getTime()}`);
  }
  for (const e of enrolments) if (e.wake_at) job('journeys', `wake-${e.id}-${e.wake_at.getTime()}`);
  for (const c of confirmations) job('email', `confirm-${c.id}`);
  for (const o of outbox.rows) job(o.queue, o.job_id);

  const counts: Record<string, number> = { event_receipts: 0, outbox: 0 };
  const count = (name: string, result: { numDeletedRows: bigint }) => {
    counts[name] = (counts[name] ?? 0) + Number(result.numDeletedRows);
  };
  // Receipts of the person's events (kept as keyed hashes of the messageIds: engine/events/rows.ts).
  // A replay of them within ERASURE_TOMBSTONE_DAYS meets the tombstones instead.
  const theirs = await sql<{ source_id: string; message_id: string }>`
    select source_id, message_id from app.events where profile_id = any(${ids}::uuid[])
    union select source_id, event_message_id from app.consent_ledger where profile_id = any(${ids}::uuid[]) and source_id is not null and event_message_id is not null
    union select source_id, event_message_id from app.consent_confirmations where profile_id = any(${ids}::uuid[]) and source_id is not null and event_message_id is not null`.execute(trx);
  // By source, each a primary-key lookup of many messageIds: a join over the whole table is what
  // the planner picks otherwise, whose cost grows with every receipt ever kept.
  const bySource = new Map<string, string[]>();
  for (const r of theirs.rows) {
    const list = bySource.get(r.source_id) ?? [];
    list.push(receiptMessageId(pseudonymKey, r.message_id));
    bySource.set(r.source_id, list);
  }
  for (const [sourceId, messageIds] of bySource) {
    for (let i = 0; i < messageIds.length; i += 1_000) {
      count(
        'event_receipts',
        await trx
          .deleteFrom('app.event_receipts')
          .where('source_id', '=', sourceId)
          .where('message_id', '=', sql<string>`any(${messageIds.slice(i, i + 1_000)}::text[])`)
          .executeTakeFirst(),
      );
    }
  }
  count('events', await trx.deleteFrom('app.events').where('profile_id', 'in', ids).executeTakeFirst());
  count('decisions', await trx.deleteFrom('app.decisions').where('profile_id', 'in', ids).executeTakeFirst());
  count('consent_ledger', await trx.deleteFrom('app.consent_ledger').where('profile_id', 'in', ids).executeTakeFirst());
  count('consent_confirmations', await trx.deleteFrom('app.consent_confirmations').where('profile_id', 'in', ids).executeTakeFirst());
  count('segment_memberships', await trx.deleteFrom('app.segment_state').where('profile_id', 'in', ids).executeTakeFirst());
  count('sends', await trx.deleteFrom('app.scheduled_sends').where('profile_id', 'in', ids).executeTakeFirst());
  count('enrolments', await trx.deleteFrom('app.enrolments').where('profile_id', 'in', ids).executeTakeFirst());
  if (outbox.rows.length > 0) count('outbox', await trx.deleteFrom('app.outbox').where('id', 'in', outbox.rows.map((o) => o.id)).executeTakeFirst());
  count('profiles', await trx.deleteFrom('app.profiles').where('id', 'in', ids).executeTakeFirst());

  // A broadcast tick's keyset cursor may be the person's id: moved just below it, it still skips
  // exactly the members it skipped, and names nobody.
  const ticks = await trx.selectFrom('app.broadcast_ticks').select(['campaign_id', 'tick_at', 'cursor']).where('cursor', 'in', ids).execute();
  for (const t of ticks) {
    await trx
      .updateTable('app.broadcast_ticks')
      .set({ cursor: uuidBefore(t.cursor as string) })
      .where('campaign_id', '=', t.campaign_id)
      .where('tick_at', '=', t.tick_at)
      .execute();
  }
  return { counts, sendIds, enrolmentIds, confirmationIds: confirmations.map((c) => c.id), jobs: [...jobs.values()] };
}

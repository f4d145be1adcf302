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

/** Receipt name, table and profile column of each deletion by profile, in order: the profiles last. */
const PROFILE_TABLES: ReadonlyArray<readonly [string, string, string]> = [
  ['events', 'app.events', 'profile_id'],
  ['decisions', 'app.decisions', 'profile_id'],
  ['consent_ledger', 'app.consent_ledger', 'profile_id'],
  ['consent_confirmations', 'app.consent_confirmations', 'profile_id'],
  ['segment_memberships', 'app.segment_state', 'profile_id'],
  ['sends', 'app.scheduled_sends', 'profile_id'],
  ['enrolments', 'app.enrolments', 'profile_id'],
  ['profiles', 'app.profiles', 'id'],
];

const emptyPurge = (): { counts: Record<string, number>; sendIds: string[]; enrolmentIds: string[]; confirmationIds: string[]; jobs: Map<string, { queue: string; id: string }> } => ({
  counts: Object.fromEntries([['event_receipts', 0], ['outbox', 0], ...PROFILE_TABLES.map(([name]) => [name, 0])]),
  sendIds: [],
  enrolmentIds: [],
  confirmationIds: [],
  jobs: new Map(),
});

/** Step 3 for one person (all their profiles): what purgeAppByProfile found, added up. */
export async function purgeApp(trx: Transaction<Database>, pseudonymKey: Buffer, profileIds: readonly string[]): Promise<AppPurge> {
  const byProfile = await purgeAppByProfile(trx, pseudonymKey, profileIds);
  return sumPurges([...byProfile.values()]);
}

export function sumPurges(purges: readonly AppPurge[]): AppPurge {
  const counts: Record<string, number> = { event_receipts: 0, outbox: 0 };
  for (const p of purges) for (const [k, v] of Object.entries(p.counts)) counts[k] = (counts[k] ?? 0) + v;
  return {
    counts,
    sendIds: purges.flatMap((p) => p.sendIds),
    enrolmentIds: purges.flatMap((p) => p.enrolmentIds),
    confirmationIds: purges.flatMap((p) => p.confirmationIds),
    jobs: purges.flatMap((p) => p.jobs),
  };
}

/**
 * Step 3 for any number of profiles (one person's, or a group of erasures'), in as many statements
 * as for one, with what was deleted attributed to each profile (each request's receipt counts its own).
 */
export async function purgeAppByProfile(trx: Transaction<Database>, pseudonymKey: Buffer, profileIds: readonly string[]): Promise<Map<string, AppPurge>> {
  const ids = [...new Set(profileIds)].sort();
  const out = new Map(ids.map((id) => [id, emptyPurge()]));
  if (ids.length === 0) return new Map();
  const of = (profileId: string) => out.get(profileId) as ReturnType<typeof emptyPurge>;
  await sql`set local consentflow.erasure = 'on'`.execute(trx);
  // The locks every path that acts on a person takes: a batch, the tick or a send in flight for them
  // finishes first, and what it wrote is deleted here.
  await lockProfiles(trx, ids);
  await lockProfileRows(trx, ids);

  const sends = await trx.selectFrom('app.scheduled_sends').select(['id', 'profile_id', 'due_at', 'deferred_from']).where('profile_id', 'in', ids).forUpdate().execute();
  const enrolments = await trx.selectFrom('app.enrolments').select(['id', 'profile_id', 'wake_at']).where('profile_id', 'in', ids).forUpdate().execute();
  const confirmations = await trx.selectFrom('app.consent_confirmations').select(['id', 'profile_id']).where('profile_id', 'in', ids).execute();
  const sendIds = sends.map((s) => s.id);
  const enrolmentIds = enrolments.map((e) => e.id);
  const outbox = await sql<{ id: string; queue: string; job_id: string; send_id: string | null; enrolment_id: string | null }>`
    select id, queue, job_id, payload ->> 'sendId' as send_id, payload ->> 'enrolmentId' as enrolment_id from app.outbox
    where (payload ? 'sendId' and payload ->> 'sendId' = any(${sendIds}::text[]))
       or (payload ? 'enrolmentId' and payload ->> 'enrolmentId' = any(${enrolmentIds}::text[]))`.execute(trx);

  // Job ids follow from the rows (engine/automation/journeys-store.ts, send-step.ts, runtime/batch.ts);
  // the outbox names any other the person had.
  const job = (profileId: string, queue: string, id: string) => of(profileId).jobs.set(`${queue}/${id}`, { queue, id });
  const ownerOfRow = new Map<string, string>();
  for (const s of sends) {
    of(s.profile_id).sendIds.push(s.id);
    ownerOfRow.set(s.id, s.profile_id);
    job(s.profile_id, 'email', `send-${s.id}`);
    if (s.deferred_from) job(s.profile_id, 'email', `send-${s.id}-${s.due_at.getTime()}`);
  }
  for (const e of enrolments) {
    of(e.profile_id).enrolmentIds.push(e.id);
    ownerOfRow.set(e.id, e.profile_id);
    if (e.wake_at) job(e.profile_id, 'journeys', `wake-${e.id}-${e.wake_at.getTime()}`);
  }
  for (const c of confirmations) {
    of(c.profile_id).confirmationIds.push(c.id);
    job(c.profile_id, 'email', `confirm-${c.id}`);
  }
  for (const o of outbox.rows) {
    const owner = ownerOfRow.get(o.send_id ?? '') ?? ownerOfRow.get(o.enrolment_id ?? '');
    if (owner) {
      job(owner, o.queue, o.job_id);
      of(owner).counts.outbox = (of(owner).counts.outbox ?? 0) + 1;
    }
  }

  // Receipts of the person's events (kept as keyed hashes of the messageIds: engine/events/rows.ts).
  // A replay of them within ERASURE_TOMBSTONE_DAYS meets the tombstones instead.
  const theirs = await sql<{ profile_id: string; source_id: string; message_id: string }>`
    select profile_id, source_id, message_id from app.events where profile_id = any(${ids}::uuid[])
    union select profile_id, source_id, event_message_id from app.consent_ledger where profile_id = any(${ids}::uuid[]) and source_id is not null and event_message_id is not null
    union select profile_id, source_id, event_message_id from app.consent_confirmations where profile_id = any(${ids}::uuid[]) and source_id is not null and event_message_id is not null`.execute(trx);
  // By source, each a primary-key lookup of many messageIds: a join over the whole table is what
  // the planner picks otherwise, whose cost grows with every receipt ever kept.
  const bySource = new Map<string, Map<string, string>>();
  for (const r of theirs.rows) {
    const owners = bySource.get(r.source_id) ?? new Map<string, string>();
    owners.set(receiptMessageId(pseudonymKey, r.message_id), r.profile_id);
    bySource.set(r.source_id, owners);
  }
  for (const [sourceId, owners] of bySource) {
    const messageIds = [...owners.keys()];
    for (let i = 0; i < messageIds.length; i += 1_000) {
      const chunk = messageIds.slice(i, i + 1_000);
      const chunkOwners = new Set(chunk.map((m) => owners.get(m) as string));
      const where = sql`where source_id = ${sourceId} and message_id = any(${chunk}::text[])`;
      if (chunkOwners.size === 1) {
        // One person's (an erasure alone, or a heavy person): counted, not returned.
        const p = of([...chunkOwners][0] as string);
        const deleted = await sql`delete from app.event_receipts ${where}`.execute(trx);
        p.counts.event_receipts = (p.counts.event_receipts ?? 0) + Number(deleted.numAffectedRows ?? 0);
      } else {
        const deleted = await sql<{ message_id: string }>`delete from app.event_receipts ${where} returning message_id`.execute(trx);
        for (const d of deleted.rows) {
          const p = of(owners.get(d.message_id) as string);
          p.counts.event_receipts = (p.counts.event_receipts ?? 0) + 1;
        }
      }
    }
  }
  // Each delete returns its count per profile; the profiles last (the others refer to them).
  for (const [name, table, column] of PROFILE_TABLES) {
    const deleted = await sql<{ profile_id: string; n: string }>`
      with d as (delete from ${sql.table(table)} where ${sql.ref(column)} = any(${ids}::uuid[]) returning ${sql.ref(column)} as profile_id)
      select profile_id, count(*)::text as n from d group by profile_id`.execute(trx);
    for (const d of deleted.rows) of(d.profile_id).counts[name] = Number(d.n);
  }
  if (outbox.rows.length > 0) await trx.deleteFrom('app.outbox').where('id', 'in', outbox.rows.map((o) => o.id)).execute();

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
  return new Map([...out].map(([id, p]) => [id, { ...p, jobs: [...p.jobs.values()] }]));
}

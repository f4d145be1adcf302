import { sql } from 'kysely';
import { addToOutbox, type AnyOutboxEntry } from '../outbox/outbox';
import type { DbOrTrx, EnrolmentState } from '../db/types';
import type { Enrolment } from '../rules/evaluate';
import type { JourneyAction, JourneyState } from '../rules/journey';
import { insertedSend, insertSends, saveSegmentChanges, type SendRow, sendJob, setTrait, wakeJob } from './journey-writes';

/**
 * Enrolments and what their journeys do, in PostgreSQL: the journey state, the sends scheduled
 * (app.scheduled_sends, the email worker's record), traits set and manual segments changed.
 */

/** An enrolment as loaded; `active`, `state` and `journey` are kept current in memory as a run acts on it. */
export interface StoredEnrolment extends Enrolment {
  readonly id: string;
  readonly profileId: string;
  active: boolean;
  state: EnrolmentState;
  journey: JourneyState | null;
  wakeAt: Date | null;
}

const reviveJourney = (value: unknown): JourneyState | null => {
  if (!value || typeof value !== 'object') return null;
  const j = value as { startedAt: string; waiting?: { kind: string; until?: string; timeoutAt?: string } } & JourneyState;
  const waiting = j.waiting
    ? j.waiting.kind === 'wait'
      ? { kind: 'wait' as const, until: new Date(j.waiting.until as string) }
      : { ...(j.waiting as object), kind: 'wait_until' as const, timeoutAt: new Date(j.waiting.timeoutAt as string) }
    : undefined;
  return { ...j, startedAt: new Date(j.startedAt), ...(waiting ? { waiting } : {}) } as JourneyState;
};

export async function enrolmentsOf(db: DbOrTrx, profileIds: readonly string[]): Promise<Map<string, StoredEnrolment[]>> {
  const out = new Map<string, StoredEnrolment[]>(profileIds.map((id) => [id, []]));
  if (profileIds.length === 0) return out;
  const rows = await db.selectFrom('app.enrolments').selectAll().where('profile_id', 'in', [...new Set(profileIds)]).execute();
  for (const r of rows) out.get(r.profile_id)?.push(fromRow(r));
  return out;
}

/**
 * What a broadcast tick needs of its members' earlier entries in the campaign: the active ones and
 * the latest (limits and the next entry number look at no other), not every issue a member ever
 * got (a weekly digest adds one a week), read by the (campaign, person, entry) index.
 */
export async function broadcastEnrolmentsOf(db: DbOrTrx, campaignId: string, profileIds: readonly string[]): Promise<Map<string, StoredEnrolment[]>> {
  const out = new Map<string, StoredEnrolment[]>(profileIds.map((id) => [id, []]));
  if (profileIds.length === 0) return out;
  const rows = await sql<Parameters<typeof fromRow>[0]>`
    select e.id, e.profile_id, e.campaign_id, e.entry, e.started_at, e.state, e.journey, e.wake_at from app.enrolments e
    where e.campaign_id = ${campaignId} and e.profile_id = any(${[...new Set(profileIds)]}::uuid[])
      and (e.state = 'active' or e.entry = (select max(m.entry) from app.enrolments m where m.campaign_id = e.campaign_id and m.profile_id = e.profile_id))`.execute(db);
  for (const r of rows.rows) out.get(r.profile_id)?.push(fromRow(r));
  return out;
}

function fromRow(r: {
  id: string;
  profile_id: string;
  campaign_id: string;
  entry: number;
  started_at: Date;
  state: EnrolmentState;
  journey: unknown;
  wake_at: Date | null;
}): StoredEnrolment {
  return {
    id: r.id,
    profileId: r.profile_id,
    campaignId: r.campaign_id,
    entry: r.entry,
    startedAt: r.started_at,
    active: r.state === 'active',
    state: r.state,
    journey: reviveJourney(r.journey),
    wakeAt: r.wake_at,
  };
}

/** Enrols unless another worker just did: the unique (campaign, person, entry) decides. */
export async function insertEnrolment(
  db: DbOrTrx,
  e: { campaignId: string; profileId: string; entry: number; campaignVersion: string; ruleSetVersion: string; journey: JourneyState; startedAt: Date },
): Promise<string | undefined> {
  const row = await db
    .insertInto('app.enrolments')
    .values({
      campaign_id: e.campaignId,
      profile_id: e.profileId,
      entry: e.entry,
      campaign_version: e.campaignVersion,
      rule_set_version: e.ruleSetVersion,
      state: 'active',
      journey: JSON.stringify(e.journey),
      started_at: e.startedAt,
      wake_at: null,
      finished_at: null,
      finish_reason: null,
    })
    .onConflict((oc) => oc.columns(['campaign_id', 'profile_id', 'entry']).doNothing())
    .returning('id')
    .executeTakeFirst();
  return row?.id;
}

/**
 * Profiles with work due by time alone (a journey's wait over, a segment window slid), locked for
 * this worker: the profile row is the one lock every path takes first (batches lock it when they
 * upsert profiles), so the tick and a batch never act on one person at once and never deadlock;
 * SKIP LOCKED leaves a busy person to the next tick. Ids of profiles that no longer exist come back
 * in `gone`.
 */
export async function claimDueProfiles(db: DbOrTrx, now: Date, limit: number): Promise<{ locked: string[]; gone: string[] }> {
  const due = await sql<{ profile_id: string }>`
    select profile_id from (
      (select profile_id from app.enrolments where state = 'active' and wake_at <= ${now} order by wake_at limit ${limit})
      union
      (select profile_id from app.segment_state where recheck_at is not null and recheck_at <= ${now} order by recheck_at limit ${limit})
    ) due limit ${limit}`.execute(db);
  const ids = due.rows.map((r) => r.profile_id);
  if (ids.length === 0) return { locked: [], gone: [] };
  const locked = await sql<{ id: string }>`
    select id from app.profiles where id = any(${ids}::uuid[]) order by id for update skip locked`.execute(db);
  const existing = await sql<{ id: string }>`select id from app.profiles where id = any(${ids}::uuid[])`.execute(db);
  const present = new Set(existing.rows.map((r) => r.id));
  return { locked: locked.rows.map((r) => r.id), gone: ids.filter((id) => !present.has(id)) };
}

/** Work left for people who no longer exist (erased): nothing to do, so it must stop being due. */
export async function retireDueWorkOf(db: DbOrTrx, profileIds: readonly string[], now: Date): Promise<void> {
  if (profileIds.length === 0) return;
  await db
    .updateTable('app.enrolments')
    .set({ state: 'ended', finished_at: now, finish_reason: 'the profile no longer exists', wake_at: null })
    .where('profile_id', 'in', profileIds)
    .where('state', '=', 'active')
    .execute();
  await db.updateTable('app.segment_state').set({ recheck_at: null }).where('profile_id', 'in', profileIds).execute();
}

export interface AppliedJourney {
  /** When the journey waits until (null once it is over, or when it waits for an event alone). */
  readonly wakeAt: Date | null;
  /** Sends actually scheduled (a step already scheduled for this enrolment is not counted again). */
  readonly sendTimes: readonly Date[];
  /** Rows written to the outbox (to relay after the commit). */
  readonly outboxRows: number;
  readonly skips: ReadonlyArray<{ stepId: string; reason: string }>;
  readonly finished?: { how: 'completed' | 'exited' | 'ended'; reason: string };
  readonly segmentChanges: ReadonlyArray<{ segmentId: string; member: boolean }>;
}

/**
 * Stores a journey's new state and performs its actions, in the caller's transaction. `wakeJob`:
 * whether its wake-up gets a delayed job of its own; not when the journey waits for its own send
 * (engine/rules/journey.ts waitsForItsSend): the send's job is the timely part, and the rules tick,
 * which claims every enrolment whose wake_at has passed, moves the journey on after it.
 */
export async function applyJourney(
  db: DbOrTrx,
  enrolment: { id: string; profileId: string; campaignId: string },
  state: JourneyState | null,
  actions: readonly JourneyAction[],
  now: Date,
  { wakeJob: withWakeJob = true }: { wakeJob?: boolean } = {},
): Promise<AppliedJourney> {
  const skips: Array<{ stepId: string; reason: string }> = [];
  const segmentChanges: Array<{ segmentId: string; member: boolean }> = [];
  const sends: SendRow[] = [];
  let finished: AppliedJourney['finished'];
  let wakeAt: Date | null = null;
  for (const action of actions) {
    switch (action.kind) {
      case 'send':
        sends.push({ enrolmentId: enrolment.id, profileId: enrolment.profileId, campaignId: enrolment.campaignId, action });
        break;
      case 'skip':
        skips.push({ stepId: action.stepId, reason: action.reason });
        break;
      case 'set_trait':
        await setTrait(db, enrolment.profileId, enrolment.campaignId, action, now);
        break;
      case 'add_to_segment':
      case 'remove_from_segment':
        segmentChanges.push({ segmentId: action.segmentId, member: action.kind === 'add_to_segment' });
        break;
      case 'wake':
        wakeAt = action.at;
        break;
      case 'finished':
        finished = { how: action.how, reason: action.reason };
        break;
    }
  }
  const inserted = await insertSends(db, sends);
  // Each new send's job, delayed until due, relayed after the commit (the rules tick relays any it did not).
  const jobs: AnyOutboxEntry[] = [];
  const sendTimes: Date[] = [];
  for (const s of sends) {
    const id = insertedSend(inserted, enrolment.id, s.action.stepId);
    if (id === undefined) continue;
    sendTimes.push(s.action.at);
    jobs.push(sendJob(id, s.action.at));
  }
  await saveSegmentChanges(db, segmentChanges.map((c) => ({ profileId: enrolment.profileId, ...c })), now);
  // The wake-up as a delayed job, relayed after the commit; the rules tick is its reconciler.
  if (state && wakeAt && withWakeJob) jobs.push(wakeJob(enrolment.id, wakeAt));
  await addToOutbox(db, jobs);
  await db
    .updateTable('app.enrolments')
    .set({
      journey: JSON.stringify(state),
      wake_at: state ? wakeAt : null,
      ...(finished ? { state: finished.how, finished_at: now, finish_reason: finished.reason } : {}),
    })
    .where('id', '=', enrolment.id)
    .execute();
  return { sendTimes, outboxRows: jobs.length, skips, segmentChanges, wakeAt: state ? wakeAt : null, ...(finished ? { finished } : {}) };
}

/**
 * Ends a journey early (exit event or condition, consent gone, campaign removed) and cancels what it
 * scheduled. Undefined when it was not active any more (nothing happened).
 */
export async function exitEnrolment(db: DbOrTrx, enrolmentId: string, reason: string, now: Date): Promise<number | undefined> {
  const exited = await db
    .updateTable('app.enrolments')
    .set({ state: 'exited', finished_at: now, finish_reason: reason, wake_at: null })
    .where('id', '=', enrolmentId)
    .where('state', '=', 'active')
    .executeTakeFirst();
  if (Number(exited.numUpdatedRows) === 0) return undefined;
  const cancelled = await db
    .updateTable('app.scheduled_sends')
    .set({ state: 'cancelled', state_reason: reason })
    .where('enrolment_id', '=', enrolmentId)
    .where('state', '=', 'scheduled')
    .executeTakeFirst();
  return Number(cancelled.numUpdatedRows);
}

import { sql } from 'kysely';
import { addToOutbox } from '../outbox/outbox';
import type { DbOrTrx, EnrolmentState } from '../db/types';
import type { Enrolment } from '../rules/evaluate';
import type { JourneyAction, JourneyState } from '../rules/journey';

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
  /** A wake-up was written to the outbox (to relay after the commit). */
  readonly wakeAt: Date | null;
  /** Sends actually scheduled (a step already scheduled for this enrolment is not counted again). */
  readonly sendTimes: readonly Date[];
  readonly skips: ReadonlyArray<{ stepId: string; reason: string }>;
  readonly finished?: { how: 'completed' | 'exited' | 'ended'; reason: string };
  readonly segmentChanges: ReadonlyArray<{ segmentId: string; member: boolean }>;
}

/** Stores a journey's new state and performs its actions, in the caller's transaction. */
export async function applyJourney(
  db: DbOrTrx,
  enrolment: { id: string; profileId: string; campaignId: string },
  state: JourneyState | null,
  actions: readonly JourneyAction[],
  now: Date,
): Promise<AppliedJourney> {
  const sendTimes: Date[] = [];
  const skips: Array<{ stepId: string; reason: string }> = [];
  const segmentChanges: Array<{ segmentId: string; member: boolean }> = [];
  let finished: AppliedJourney['finished'];
  let wakeAt: Date | null = null;
  for (const action of actions) {
    switch (action.kind) {
      case 'send': {
        const inserted = await db
          .insertInto('app.scheduled_sends')
          .values({
            enrolment_id: enrolment.id,
            profile_id: enrolment.profileId,
            campaign_id: enrolment.campaignId,
            step_id: action.stepId,
            template: action.template,
            due_at: action.at,
            deferred_from: action.deferredFrom ?? null,
            state_reason: action.reason ?? null,
          })
          .onConflict((oc) => oc.columns(['enrolment_id', 'step_id']).doNothing())
          .returning('id')
          .executeTakeFirst();
        if (inserted) {
          sendTimes.push(action.at);
          // Its job, delayed until due, relayed after the commit (the tick re-enqueues any it lost).
          await addToOutbox(db, [{ queue: 'email', job: 'send', jobId: `send-${inserted.id}`, payload: { sendId: inserted.id }, runAt: action.at }]);
        }
        break;
      }
      case 'skip':
        skips.push({ stepId: action.stepId, reason: action.reason });
        break;
      case 'set_trait':
        // A trait set by a campaign carries the campaign as its source (invariant 3).
        await sql`update app.profiles set traits = traits || jsonb_build_object(${action.name}::text,
            jsonb_build_object('v', ${JSON.stringify(action.value)}::jsonb, 'src', ${`campaign:${enrolment.campaignId}`}::text, 'at', ${now.toISOString()}::text)),
            updated_at = now()
          where id = ${enrolment.profileId}`.execute(db);
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
  for (const change of segmentChanges) {
    await db
      .insertInto('app.segment_state')
      .values({ profile_id: enrolment.profileId, segment_id: change.segmentId, member: change.member, changed_at: now, recheck_at: null })
      .onConflict((oc) => oc.columns(['profile_id', 'segment_id']).doUpdateSet({ member: change.member, changed_at: now }))
      .execute();
  }
  if (state && wakeAt) {
    // The wake-up as a delayed job, relayed after the commit; the rules tick is its reconciler.
    await addToOutbox(db, [
      { queue: 'journeys', job: 'wake', jobId: `wake-${enrolment.id}-${wakeAt.getTime()}`, payload: { enrolmentId: enrolment.id, wakeAt: wakeAt.toISOString() }, runAt: wakeAt },
    ]);
  }
  await db
    .updateTable('app.enrolments')
    .set({
      journey: JSON.stringify(state),
      wake_at: state ? wakeAt : null,
      ...(finished ? { state: finished.how, finished_at: now, finish_reason: finished.reason } : {}),
    })
    .where('id', '=', enrolment.id)
    .execute();
  return { sendTimes, skips, segmentChanges, wakeAt: state ? wakeAt : null, ...(finished ? { finished } : {}) };
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

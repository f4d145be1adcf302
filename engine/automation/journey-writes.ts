import { sql } from 'kysely';
import type { DbOrTrx } from '../db/types';
import type { OutboxEntry } from '../outbox/outbox';
import type { JourneyAction } from '../rules/journey';

/**
 * What journeys write, for any number of enrolments at once: a statement for all the sends, one
 * for their outbox rows, one for the segment changes (a broadcast page writes thousands of each).
 * The rows travel as one JSON parameter (jsonb_to_recordset): JSON.stringify is native, where
 * arrays bound as parameters are escaped element by element in JavaScript.
 * The job ids are deterministic (relaying twice adds one job) and erasure derives them from the
 * rows (engine/privacy/erasure/purge-app.ts): `send-<send id>`, `wake-<enrolment id>-<ms>`.
 */

export const sendJob = (sendId: string, at: Date): OutboxEntry<'email', 'send'> => ({ queue: 'email', job: 'send', jobId: `send-${sendId}`, payload: { sendId }, runAt: at });

export const wakeJob = (enrolmentId: string, at: Date): OutboxEntry<'journeys', 'wake'> => ({
  queue: 'journeys',
  job: 'wake',
  jobId: `wake-${enrolmentId}-${at.getTime()}`,
  payload: { enrolmentId, wakeAt: at.toISOString() },
  runAt: at,
});

export interface SendRow {
  readonly enrolmentId: string;
  readonly profileId: string;
  readonly campaignId: string;
  readonly action: Extract<JourneyAction, { kind: 'send' }>;
}

const sendKey = (enrolmentId: string, stepId: string) => `${enrolmentId} ${stepId}`;

/**
 * Inserts the sends, one statement; a step already scheduled for its enrolment is left alone (one
 * send per enrolment and step). Returns the new rows' ids by `enrolment step` (see `insertedSend`).
 */
export async function insertSends(db: DbOrTrx, rows: readonly SendRow[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (rows.length === 0) return out;
  const values = rows.map((r) => ({
    e: r.enrolmentId,
    p: r.profileId,
    c: r.campaignId,
    s: r.action.stepId,
    t: r.action.template,
    d: r.action.at,
    f: r.action.deferredFrom ?? null,
    r: r.action.reason ?? null,
  }));
  const inserted = await sql<{ id: string; enrolment_id: string; step_id: string }>`
    insert into app.scheduled_sends (enrolment_id, profile_id, campaign_id, step_id, template, due_at, deferred_from, state_reason)
    select e, p, c, s, t, d, f, r from jsonb_to_recordset(${JSON.stringify(values)}::jsonb)
      as v(e uuid, p uuid, c text, s text, t text, d timestamptz, f timestamptz, r text)
    on conflict (enrolment_id, step_id) do nothing
    returning id, enrolment_id, step_id`.execute(db);
  for (const r of inserted.rows) out.set(sendKey(r.enrolment_id, r.step_id), r.id);
  return out;
}

export const insertedSend = (inserted: ReadonlyMap<string, string>, enrolmentId: string, stepId: string) => inserted.get(sendKey(enrolmentId, stepId));

export interface SegmentChange {
  readonly profileId: string;
  readonly segmentId: string;
  readonly member: boolean;
}

/** Manual segment changes made by journeys, one statement; of two changes to one membership, the later wins. */
export async function saveSegmentChanges(db: DbOrTrx, changes: readonly SegmentChange[], now: Date): Promise<void> {
  const last = new Map<string, SegmentChange>();
  for (const c of changes) last.set(`${c.profileId} ${c.segmentId}`, c);
  if (last.size === 0) return;
  const values = [...last.values()].map((c) => ({ p: c.profileId, s: c.segmentId, m: c.member }));
  await sql`insert into app.segment_state (profile_id, segment_id, member, changed_at, recheck_at)
    select p, s, m, ${now}, null from jsonb_to_recordset(${JSON.stringify(values)}::jsonb) as v(p uuid, s text, m boolean)
    on conflict (profile_id, segment_id) do update set member = excluded.member, changed_at = excluded.changed_at`.execute(db);
}

/** A trait set by a campaign carries the campaign as its source (invariant 3). */
export async function setTrait(db: DbOrTrx, profileId: string, campaignId: string, action: Extract<JourneyAction, { kind: 'set_trait' }>, now: Date): Promise<void> {
  await sql`update app.profiles set traits = traits || jsonb_build_object(${action.name}::text,
      jsonb_build_object('v', ${JSON.stringify(action.value)}::jsonb, 'src', ${`campaign:${campaignId}`}::text, 'at', ${now.toISOString()}::text)),
      updated_at = now()
    where id = ${profileId}`.execute(db);
}

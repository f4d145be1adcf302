import type { ExportedEnrolment, ExportedSegment, ExportedSend } from '../../../schemas/subject-export';
import type { DbOrTrx } from '../../db/types';

const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * What the marketing rules did with the person: the segments they are in, the campaigns they were
 * enrolled in and the emails scheduled for them (which template, when, what became of it; never
 * the text, which is rendered at send time and not kept). Bounded by the number of segments and
 * campaigns, read whole by the profile indexes.
 */
export async function readJourneys(
  db: DbOrTrx,
  profileIds: readonly string[],
): Promise<{ segments: ExportedSegment[]; enrolments: ExportedEnrolment[]; sends: ExportedSend[] }> {
  const ids = [...profileIds];
  const segments = await db
    .selectFrom('app.segment_state')
    .select(['profile_id', 'segment_id', 'changed_at'])
    .where('profile_id', 'in', ids)
    .where('member', '=', true)
    .orderBy('segment_id')
    .execute();
  const enrolments = await db.selectFrom('app.enrolments').selectAll().where('profile_id', 'in', ids).orderBy('started_at').orderBy('id').execute();
  const sends = await db
    .selectFrom('app.scheduled_sends')
    .select(['id', 'profile_id', 'enrolment_id', 'campaign_id', 'step_id', 'template', 'due_at', 'deferred_from', 'state', 'state_reason', 'created_at', 'sent_at'])
    .where('profile_id', 'in', ids)
    .orderBy('due_at')
    .orderBy('id')
    .execute();
  return {
    segments: segments.map((s) => ({ profileId: s.profile_id, segmentId: s.segment_id, since: s.changed_at.toISOString() })),
    enrolments: enrolments.map((e) => ({
      id: e.id,
      profileId: e.profile_id,
      campaignId: e.campaign_id,
      entry: e.entry,
      campaignVersion: e.campaign_version,
      ruleSetVersion: e.rule_set_version,
      state: e.state,
      startedAt: e.started_at.toISOString(),
      wakeAt: iso(e.wake_at),
      finishedAt: iso(e.finished_at),
      finishReason: e.finish_reason,
      journey: e.journey,
    })),
    sends: sends.map((s) => ({
      id: s.id,
      profileId: s.profile_id,
      enrolmentId: s.enrolment_id,
      campaignId: s.campaign_id,
      stepId: s.step_id,
      template: s.template,
      dueAt: s.due_at.toISOString(),
      deferredFrom: iso(s.deferred_from),
      state: s.state,
      stateReason: s.state_reason,
      createdAt: s.created_at.toISOString(),
      sentAt: iso(s.sent_at),
    })),
  };
}

import { sql } from 'kysely';
import type { DbOrTrx } from '../db/types';

/** Segment membership per profile (app.segment_state), as the events worker and the recompute keep it. */

export interface SegmentStateRow {
  readonly profileId: string;
  readonly segmentId: string;
  readonly member: boolean;
  readonly changedAt: Date;
  readonly recheckAt: Date | null;
}

/** Current memberships of each profile (segment ids where member). */
export async function membershipsOf(db: DbOrTrx, profileIds: readonly string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>(profileIds.map((id) => [id, new Set()]));
  if (profileIds.length === 0) return out;
  const rows = await db
    .selectFrom('app.segment_state')
    .select(['profile_id', 'segment_id'])
    .where('profile_id', 'in', [...new Set(profileIds)])
    .where('member', '=', true)
    .execute();
  for (const r of rows) out.get(r.profile_id)?.add(r.segment_id);
  return out;
}

/** Writes evaluated states; a row changes its changed_at only when membership flips. */
export async function saveSegmentStates(db: DbOrTrx, rows: readonly SegmentStateRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db
    .insertInto('app.segment_state')
    .values(
      [...rows]
        .sort((a, b) => (a.profileId === b.profileId ? (a.segmentId < b.segmentId ? -1 : 1) : a.profileId < b.profileId ? -1 : 1))
        .map((r) => ({ profile_id: r.profileId, segment_id: r.segmentId, member: r.member, changed_at: r.changedAt, recheck_at: r.recheckAt })),
    )
    .onConflict((oc) =>
      oc.columns(['profile_id', 'segment_id']).doUpdateSet({
        member: sql`excluded.member`,
        changed_at: sql`case when app.segment_state.member = excluded.member then app.segment_state.changed_at else excluded.changed_at end`,
        recheck_at: sql`excluded.recheck_at`,
      }),
    )
    .execute();
}

/**
 * Profiles whose membership may have changed by time alone (a window slid past), locked so two
 * workers recompute different ones. Cost grows with the rows due, not with all profiles.
 */
export async function claimDueRechecks(db: DbOrTrx, now: Date, limit: number): Promise<string[]> {
  const rows = await sql<{ profile_id: string }>`
    select distinct profile_id from (
      select profile_id from app.segment_state
      where recheck_at is not null and recheck_at <= ${now}
      order by recheck_at
      limit ${limit}
      for update skip locked
    ) due`.execute(db);
  return rows.rows.map((r) => r.profile_id);
}

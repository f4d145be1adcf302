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
      oc
        .columns(['profile_id', 'segment_id'])
        .doUpdateSet({
          member: sql`excluded.member`,
          changed_at: sql`case when app.segment_state.member = excluded.member then app.segment_state.changed_at else excluded.changed_at end`,
          recheck_at: sql`excluded.recheck_at`,
        })
        // Most evaluations change nothing: an unchanged row is left alone, with no new row version
        // to write, log and vacuum (the end-to-end bench rewrote four rows a person a batch).
        .where((eb) =>
          eb.or([
            eb('app.segment_state.member', 'is distinct from', sql<boolean>`excluded.member`),
            eb('app.segment_state.recheck_at', 'is distinct from', sql<Date>`excluded.recheck_at`),
          ]),
        ),
    )
    .execute();
}

/**
 * Due re-checks of segments a rule set no longer evaluates (deleted, or made manual) would be due
 * forever: they stop being due once the profile has been evaluated under the current set.
 */
export async function clearStaleRechecks(db: DbOrTrx, profileIds: readonly string[], evaluatedSegments: readonly string[], now: Date): Promise<void> {
  if (profileIds.length === 0) return;
  await sql`update app.segment_state set recheck_at = null
    where profile_id = any(${[...profileIds]}::uuid[]) and recheck_at is not null and recheck_at <= ${now}
      and not (segment_id = any(${[...evaluatedSegments]}::text[]))`.execute(db);
}

import { type RawBuilder, sql } from 'kysely';
import type { DbOrTrx } from '../../db/types';
import type { Cutoffs } from './cutoffs';

/**
 * The SQL of retention, apart: the plan counts with the same predicates the run deletes with, so
 * what `retention plan` shows is what `retention run` does (for the same moment and data).
 */

/** Per decision: the cutoff of the longest retention among the purposes it cites (or the fallback). */
function decisionCutoff(c: Cutoffs): RawBuilder<Date> {
  const names = c.decisions.purposes.map((p) => p.name);
  const cutoffs = c.decisions.purposes.map((p) => p.cutoff.toISOString());
  return sql<Date>`coalesce(
    (select min(r.cutoff) from unnest(${names}::text[], ${cutoffs}::timestamptz[]) as r(name, cutoff) where r.name = any(d.purposes)),
    ${c.decisions.fallback.cutoff.toISOString()}::timestamptz)`;
}

export async function countExpiredDecisions(db: DbOrTrx, c: Cutoffs): Promise<Array<{ cutoff: Date; rows: number }>> {
  const { rows } = await sql<{ cutoff: Date; n: string }>`
    select k.cutoff, count(*)::text as n
    from app.decisions d cross join lateral (select ${decisionCutoff(c)} as cutoff) k
    where d.decided_at < ${c.decisions.cutoff} and d.decided_at < k.cutoff
    group by k.cutoff order by k.cutoff`.execute(db);
  return rows.map((r) => ({ cutoff: new Date(r.cutoff), rows: Number(r.n) }));
}

export async function deleteExpiredDecisions(db: DbOrTrx, c: Cutoffs, limit: number): Promise<number> {
  const result = await sql`
    delete from app.decisions where id in (
      select d.id from app.decisions d cross join lateral (select ${decisionCutoff(c)} as cutoff) k
      where d.decided_at < ${c.decisions.cutoff} and d.decided_at < k.cutoff
      order by d.decided_at limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

const expiredConfirmation = (c: Cutoffs) => sql`confirmed_at is null and expires_at < ${c.confirmations.cutoff}`;

export async function countExpiredConfirmations(db: DbOrTrx, c: Cutoffs): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*)::text as n from app.consent_confirmations where ${expiredConfirmation(c)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

export async function deleteExpiredConfirmations(db: DbOrTrx, c: Cutoffs, limit: number): Promise<number> {
  const result = await sql`
    delete from app.consent_confirmations where id in (
      select id from app.consent_confirmations where ${expiredConfirmation(c)} limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

// A row with a re-check due is how a sliding window ("last seen before 30d") brings the person in
// with no new event: it stays whatever its age.
const expiredSegmentState = (c: Cutoffs) => sql`not member and recheck_at is null and changed_at < ${c.segmentStates.cutoff}`;

export async function countExpiredSegmentStates(db: DbOrTrx, c: Cutoffs): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*)::text as n from app.segment_state where ${expiredSegmentState(c)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

export async function deleteExpiredSegmentStates(db: DbOrTrx, c: Cutoffs, limit: number): Promise<number> {
  // The predicate again on the outer delete: a row that turned member meanwhile is re-read and kept.
  const result = await sql`
    delete from app.segment_state where ${expiredSegmentState(c)} and (profile_id, segment_id) in (
      select profile_id, segment_id from app.segment_state where ${expiredSegmentState(c)} limit ${limit})`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

const inactiveProfile = (c: Cutoffs) => sql`p.last_seen_at < ${c.profiles.cutoff}
  and not exists (select 1 from app.enrolments e where e.profile_id = p.id and e.state = 'active')`;

export async function countInactiveProfiles(db: DbOrTrx, c: Cutoffs): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*)::text as n from app.profiles p where ${inactiveProfile(c)}`.execute(db);
  return Number(rows[0]?.n ?? 0);
}

export interface ProfileKey {
  readonly id: string;
  /** As PostgreSQL prints it: a Date would drop the microseconds, and the keyset would see a row twice. */
  readonly lastSeenAt: string;
}

/** The next page of inactive profiles, oldest first, after `after` (keyset over last_seen_at, id). */
export async function inactiveProfilesPage(db: DbOrTrx, c: Cutoffs, after: ProfileKey | undefined, limit: number): Promise<ProfileKey[]> {
  const { rows } = await sql<{ id: string; last_seen_at: string }>`
    select p.id, p.last_seen_at::text as last_seen_at from app.profiles p
    where ${inactiveProfile(c)}
      ${after ? sql`and (p.last_seen_at, p.id) > (${after.lastSeenAt}::timestamptz, ${after.id}::uuid)` : sql``}
    order by p.last_seen_at, p.id limit ${limit}`.execute(db);
  return rows.map((r) => ({ id: r.id, lastSeenAt: r.last_seen_at }));
}

/** Whether the profile is (still) inactive: it may have come back since its page was read. */
export async function isInactive(db: DbOrTrx, c: Cutoffs, profileId: string): Promise<boolean> {
  const { rows } = await sql<{ one: number }>`select 1 as one from app.profiles p where p.id = ${profileId}::uuid and ${inactiveProfile(c)}`.execute(db);
  return rows.length > 0;
}

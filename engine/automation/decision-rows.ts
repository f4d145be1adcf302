import { sql } from 'kysely';
import type { Decision } from '../consent/decisions';
import type { DbOrTrx } from '../db/types';

/**
 * Decisions as recordDecisions (engine/consent/decisions.ts) stores them, for a broadcast page's
 * thousands at once: the rows as one JSON parameter (jsonb_to_recordset) instead of ten parameters
 * a row, which is most of what a multi-row insert of this size costs to send and to plan.
 */
export async function insertDecisions(db: DbOrTrx, decisions: readonly Decision[]): Promise<void> {
  if (decisions.length === 0) return;
  const rows = decisions.map((d) => ({
    p: d.profileId,
    a: d.action,
    al: d.allowed,
    r: d.reason,
    pu: d.purposes,
    m: d.missing ?? [],
    ref: d.ref ?? {},
    ri: d.ruleId ?? null,
    rv: d.ruleVersion ?? null,
    o: d.outcome ?? null,
  }));
  await sql`insert into app.decisions (profile_id, action, allowed, reason, purposes, missing, ref, rule_id, rule_version, outcome)
    select p, a, al, r, pu, m, ref, ri, rv, o from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
      as v(p uuid, a text, al boolean, r text, pu text[], m text[], ref jsonb, ri text, rv text, o text)`.execute(db);
}

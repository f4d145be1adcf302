import { sql } from 'kysely';
import type { DbOrTrx, EventType, TraitValue } from '../db/types';
import type { ConsentState } from '../consent/gate';
import { currentConsent } from '../consent/ledger';
import type { CompiledRuleSet } from '../rules/compile';
import type { ProfileSnapshot, SnapshotEvent } from '../rules/conditions';
import { isTimeZone } from '../rules/journey';
import { membershipsOf } from './segment-state';

/** The most recent matching events read per person: behaviour counts (at_least ≤ 1000) fit in it. */
const EVENTS_PER_PROFILE = 1_001;

/**
 * What the pure evaluator needs about each profile, read in a few set-based queries: plain trait
 * values, current consent, memberships, and only the recent events the rule set looks at (their
 * names and types, within the longest window it needs).
 */
export async function loadSnapshots(
  db: DbOrTrx,
  compiled: CompiledRuleSet,
  profileIds: readonly string[],
  now: Date,
  /** Consent the caller read in this transaction already: not read again. */
  knownConsent?: ReadonlyMap<string, ConsentState>,
): Promise<Map<string, ProfileSnapshot>> {
  const ids = [...new Set(profileIds)];
  const out = new Map<string, ProfileSnapshot>();
  if (ids.length === 0) return out;
  const [profiles, consent, segments, events] = await Promise.all([
    db.selectFrom('app.profiles').select(['id', 'traits', 'last_seen_at']).where('id', 'in', ids).execute(),
    knownConsent ?? currentConsent(db, ids),
    membershipsOf(db, ids),
    recentEvents(db, compiled, ids, now),
  ]);
  for (const p of profiles) {
    const traits = Object.fromEntries(Object.entries(p.traits as Record<string, TraitValue>).map(([name, t]) => [name, t?.v]));
    const zone = typeof traits.timezone === 'string' && isTimeZone(traits.timezone) ? traits.timezone : undefined;
    out.set(p.id, {
      profileId: p.id,
      traits,
      consent: consent.get(p.id) ?? new Map(),
      segments: segments.get(p.id) ?? new Set(),
      events: events.get(p.id) ?? [],
      lastSeenAt: p.last_seen_at,
      ...(zone ? { timezone: zone } : {}),
    });
  }
  return out;
}

async function recentEvents(db: DbOrTrx, compiled: CompiledRuleSet, profileIds: readonly string[], now: Date): Promise<Map<string, SnapshotEvent[]>> {
  const out = new Map<string, SnapshotEvent[]>();
  const needs = compiled.needs;
  if (needs.events.length === 0) return out;
  const since = new Date(now.getTime() - needs.maxWindowMs);
  const named = needs.events.filter((n) => n.name !== null).map((n) => n.name as string);
  const anyName = [...new Set(needs.events.filter((n) => n.name === null).map((n) => n.type))];
  // The newest events per person, capped, so one very active profile (a bot) cannot crowd out the
  // others of its batch or make the batch's cost grow with its history.
  const result = await sql<{ profile_id: string; type: string; name: string | null; properties: Record<string, unknown>; occurred_at: Date }>`
    select profile_id, type, name, properties, occurred_at from (
      select profile_id, type, name, properties, occurred_at,
             row_number() over (partition by profile_id order by occurred_at desc) as rn
      from app.events
      where profile_id = any(${[...profileIds]}::uuid[]) and occurred_at > ${since}
        and ${
          // Only the branches needed, so the (profile_id, name, occurred_at) index serves the usual
          // case: an always-false `or` would make the planner scan the person's whole window.
          named.length > 0 && anyName.length > 0
            ? sql`(name = any(${[...new Set(named)]}::text[]) or type = any(${anyName}::text[]))`
            : named.length > 0
              ? sql`name = any(${[...new Set(named)]}::text[])`
              : sql`type = any(${anyName}::text[])`
        }
    ) recent
    where rn <= ${EVENTS_PER_PROFILE}
    order by occurred_at`.execute(db);
  const rows = result.rows;
  for (const r of rows) {
    const window = needs.windowFor(r.type as EventType, r.name);
    if (window === null || r.occurred_at.getTime() <= now.getTime() - window) continue;
    const list = out.get(r.profile_id as string) ?? [];
    list.push({ type: r.type as EventType, name: r.name, properties: r.properties, occurredAt: r.occurred_at });
    out.set(r.profile_id as string, list);
  }
  return out;
}

/** Sends to each profile since `since` (scheduled, sending or sent), for frequency caps across campaigns. */
export async function recentSends(db: DbOrTrx, profileIds: readonly string[], since: Date): Promise<Map<string, Date[]>> {
  const out = new Map<string, Date[]>();
  if (profileIds.length === 0) return out;
  const rows = await sql<{ profile_id: string; due_at: Date }>`
    select profile_id, due_at from app.scheduled_sends
    where profile_id = any(${[...new Set(profileIds)]}::uuid[]) and due_at >= ${since} and state in ('scheduled', 'sending', 'sent')`.execute(db);
  for (const r of rows.rows) {
    const list = out.get(r.profile_id) ?? [];
    list.push(r.due_at);
    out.set(r.profile_id, list);
  }
  return out;
}

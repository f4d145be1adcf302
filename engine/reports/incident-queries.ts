import { sql } from 'kysely';
import type { AuditOutcome, DbOrTrx } from '../db/types';
import type { IncidentPeriod } from './incident-period';

/**
 * The statements behind the incident report: aggregates over the period by the audit log's `at`
 * index, and the entries the report lists one by one. Counts come back as int (an audit period
 * holds far fewer than 2^31 entries).
 */

/** Actions listed entry by entry, besides every decryption. */
export const LISTED_ACTIONS = ['keys.create', 'keys.revoke', 'subject.erase', 'subject.export'] as const;

const decrypted = sql<boolean>`detail @> '{"decrypted": true}'::jsonb`;

export interface ActionOutcomeCount {
  readonly action: string;
  readonly outcome: AuditOutcome;
  readonly count: number;
}

export async function countByActionAndOutcome(db: DbOrTrx, period: IncidentPeriod): Promise<ActionOutcomeCount[]> {
  return db
    .selectFrom('app.audit_log')
    .select(['action', 'outcome', sql<number>`count(*)::int`.as('count')])
    .where('at', '>=', period.since)
    .where('at', '<', period.until)
    .groupBy(['action', 'outcome'])
    .orderBy('action')
    .orderBy('outcome')
    .execute();
}

export interface ListedRow {
  readonly seq: string;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly outcome: AuditOutcome;
  readonly reason: string | null;
  readonly decrypted: boolean;
}

export async function listedEntries(db: DbOrTrx, period: IncidentPeriod): Promise<ListedRow[]> {
  return db
    .selectFrom('app.audit_log')
    .select(['seq', 'at', 'actor', 'action', 'target', 'outcome', 'reason', decrypted.as('decrypted')])
    .where('at', '>=', period.since)
    .where('at', '<', period.until)
    .where((eb) => eb.or([eb('action', 'in', [...LISTED_ACTIONS]), eb(decrypted, '=', true)]))
    .orderBy('seq')
    .execute();
}

export interface ActorRow {
  readonly actor: string;
  readonly entries: number;
  readonly decryptions: number;
  readonly denied: number;
  readonly first: Date;
  readonly last: Date;
  /** Distinct actions refused to this actor, sorted. */
  readonly deniedActions: string[] | null;
  readonly firstDenied: Date | null;
  readonly lastDenied: Date | null;
}

export async function actorsInPeriod(db: DbOrTrx, period: IncidentPeriod): Promise<ActorRow[]> {
  const { rows } = await sql<ActorRow>`
    select actor,
           count(*)::int as entries,
           (count(*) filter (where ${decrypted}))::int as decryptions,
           (count(*) filter (where outcome = 'denied'))::int as denied,
           min(at) as first,
           max(at) as last,
           array_agg(distinct action order by action) filter (where outcome = 'denied') as "deniedActions",
           min(at) filter (where outcome = 'denied') as "firstDenied",
           max(at) filter (where outcome = 'denied') as "lastDenied"
      from app.audit_log
     where at >= ${period.since} and at < ${period.until}
     group by actor
     order by count(*) desc, actor`.execute(db);
  return rows;
}

export interface KeyRow {
  readonly id: string;
  readonly name: string;
  readonly role: string;
  readonly revoked_at: Date | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The API keys behind `key:<uuid>` actors; anything else after `key:` is not looked up. */
export async function keysOfActors(db: DbOrTrx, actors: readonly string[]): Promise<Map<string, KeyRow>> {
  const ids = [...new Set(actors.filter((a) => a.startsWith('key:')).map((a) => a.slice(4).toLowerCase()).filter((id) => UUID.test(id)))];
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('app.api_keys').select(['id', 'name', 'role', 'revoked_at']).where('id', 'in', ids).execute();
  return new Map(rows.map((r) => [r.id.toLowerCase(), r]));
}

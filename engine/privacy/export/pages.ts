import { type RawBuilder, sql } from 'kysely';
import type { ExportedDecision, ExportedEvent } from '../../../schemas/subject-export';
import type { DbOrTrx, EventType } from '../../db/types';

/**
 * The two parts of a person's data that grow without bound (events, and the decisions they
 * trigger), read in keyset pages: each page is one short query along the profile index
 * (events_profile_idx, decisions_profile_idx), starting after the last row of the page before, so
 * memory holds one page and the cost grows with the person's rows, never with the table. No cursor
 * or transaction is held between pages, so a slow reader blocks nothing.
 *
 * With pending merges, every page is a UNION ALL of one ordered, limited branch per profile, each
 * walking its own index. A merge applied during the export moves rows from one branch to another
 * without changing their key, so each row is still read exactly once.
 */

export const PAGE_SIZE = 500;

/** Where the last page ended: the time as PostgreSQL's text (microseconds kept) and the row id. */
interface Cursor {
  readonly at: string;
  readonly id: string;
}

type Page<R> = ReadonlyArray<R & { cursor_at: string; cursor_id: string }>;

async function* keysetPages<R>(fetch: (after: Cursor | undefined) => Promise<Page<R>>): AsyncGenerator<Page<R>> {
  let after: Cursor | undefined;
  for (;;) {
    const page = await fetch(after);
    if (page.length > 0) yield page;
    const last = page[page.length - 1];
    if (!last || page.length < PAGE_SIZE) return;
    after = { at: last.cursor_at, id: last.cursor_id };
  }
}

/** `(time, id) > cursor`, written so the index on (profile_id, time) bounds the scan. */
function afterCursor(time: RawBuilder<unknown>, id: RawBuilder<unknown>, idType: 'uuid' | 'bigint', after: Cursor | undefined): RawBuilder<unknown> {
  if (!after) return sql`true`;
  const at = sql`${after.at}::timestamptz`;
  const afterId = idType === 'uuid' ? sql`${after.id}::uuid` : sql`${after.id}::bigint`;
  return sql`${time} >= ${at} and (${time} > ${at} or ${id} > ${afterId})`;
}

interface EventRow {
  id: string;
  profile_id: string;
  message_id: string;
  type: EventType;
  name: string | null;
  occurred_at: Date;
  received_at: Date;
  source_id: string;
  properties: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** The person's events, oldest first, a page at a time. */
export async function* eventPages(db: DbOrTrx, profileIds: readonly string[]): AsyncGenerator<ExportedEvent[]> {
  const pages = keysetPages<EventRow>(async (after) => {
    const branch = (profileId: string) => sql`(
      select id, profile_id, message_id, type, name, occurred_at, received_at, source_id, properties, context,
             occurred_at::text as cursor_at, id::text as cursor_id
      from app.events
      where profile_id = ${profileId}::uuid and ${afterCursor(sql.ref('occurred_at'), sql.ref('id'), 'uuid', after)}
      order by occurred_at, id
      limit ${PAGE_SIZE})`;
    const { rows } = await sql<EventRow & { cursor_at: string; cursor_id: string }>`
      select * from (${sql.join(profileIds.map(branch), sql` union all `)}) as page
      order by occurred_at, id limit ${PAGE_SIZE}`.execute(db);
    return rows;
  });
  for await (const page of pages) {
    yield page.map((e) => ({
      id: e.id,
      profileId: e.profile_id,
      messageId: e.message_id,
      type: e.type,
      name: e.name,
      occurredAt: e.occurred_at.toISOString(),
      receivedAt: e.received_at.toISOString(),
      sourceId: e.source_id,
      properties: e.properties,
      context: e.context,
    }));
  }
}

interface DecisionRow {
  /** bigint: a string from pg, maybe a number or bigint elsewhere. */
  id: string | number | bigint;
  profile_id: string;
  action: string;
  allowed: boolean;
  reason: string;
  purposes: string[];
  missing: string[];
  ref: Record<string, unknown>;
  rule_id: string | null;
  rule_version: string | null;
  outcome: string | null;
  decided_at: Date;
}

/** What the engine decided about the person and why, oldest first, a page at a time. */
export async function* decisionPages(db: DbOrTrx, profileIds: readonly string[]): AsyncGenerator<ExportedDecision[]> {
  const pages = keysetPages<DecisionRow>(async (after) => {
    const branch = (profileId: string) => sql`(
      select id, profile_id, action, allowed, reason, purposes, missing, ref, rule_id, rule_version, outcome, decided_at,
             decided_at::text as cursor_at, id::text as cursor_id
      from app.decisions
      where profile_id = ${profileId}::uuid and ${afterCursor(sql.ref('decided_at'), sql.ref('id'), 'bigint', after)}
      order by decided_at, id
      limit ${PAGE_SIZE})`;
    const { rows } = await sql<DecisionRow & { cursor_at: string; cursor_id: string }>`
      select * from (${sql.join(profileIds.map(branch), sql` union all `)}) as page
      order by decided_at, id limit ${PAGE_SIZE}`.execute(db);
    return rows;
  });
  for await (const page of pages) {
    yield page.map((d) => ({
      id: String(d.id),
      profileId: d.profile_id,
      action: d.action,
      allowed: d.allowed,
      reason: d.reason,
      purposes: d.purposes,
      missing: d.missing,
      ref: d.ref,
      ruleId: d.rule_id,
      ruleVersion: d.rule_version,
      outcome: d.outcome,
      decidedAt: d.decided_at.toISOString(),
    }));
  }
}

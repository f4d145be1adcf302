import { sql } from 'kysely';
import type { Kysely } from 'kysely';

/**
 * Where a person can be referred to, read from PostgreSQL's catalogue rather than listed by hand, so
 * a table added later is covered by the erasure check without a code change: every uuid column (a
 * profile, a send, an enrolment, a confirmation id), every bytea column (a blind index) and every
 * text column holding a job id, in schemas `app` and `vault`. The few columns that can never hold
 * a person's reference are named below with the reason; a test (test/integration/erasure.test.ts)
 * fails when a person's data sits in a table this check does not find.
 */

export interface PersonColumn {
  readonly schema: 'app' | 'vault';
  readonly table: string;
  readonly column: string;
  readonly kind: 'uuid' | 'hash' | 'job_id';
}

/** Columns that never refer to a person, and the remnants erasure leaves on purpose. */
export const NOT_PERSON_COLUMNS: Readonly<Record<string, string>> = {
  'app.sources.id': 'a website or app, not a person',
  'app.api_keys.id': 'an operator key',
  'app.api_keys.key_hash': 'the hash of an operator key',
  'app.sources.write_key_hash': 'the hash of a write key',
  'app.events.id': "an event's own id; the person's events are found by profile_id",
  'app.consent_ledger.notice_hash': 'the hash of a notice text shown to everybody',
  'app.consent_confirmations.notice_hash': 'the hash of a notice text shown to everybody',
  'app.erasure_requests.id': 'the request itself, kept with its receipt',
  'app.erasure_requests.identifier_hash': "cleared by the receipt step (a check constraint holds it)",
  'vault.subject_fields.ciphertext': "encrypted under the person's data key; goes with the key (step 2)",
  'vault.subject_keys.wrapped_key': "the person's data key itself, wrapped; found by profile_id",
  'app.suppressions.hash': 'kept on purpose: the keyed hash that stops a re-import (ERASURE_SUPPRESS)',
  'vault.erasure_tombstones.hash': 'kept on purpose until it expires (ERASURE_TOMBSTONE_DAYS): drops late events',
  'vault.erasure_tombstones.request_id': 'the request itself',
  'app.audit_log.hash': "the audit chain's own links (an entry names a person only by a keyed pseudonym, engine/audit/targets.ts)",
  'app.audit_log.prev_hash': "the audit chain's own links",
};

/**
 * Tables that hold no column naming a person, but rows about them that erasure reaches through
 * another table (purge-app.ts): the check by index cannot look them up afterwards, the deep scan can.
 */
export const REACHED_THROUGH: Readonly<Record<string, string>> = {
  'app.event_receipts': "the person's events, consent rows and confirmations (by source and messageId)",
};

/** JSON columns whose keys hold a person's ids, each with an expression index (migration 0006). */
export const JSON_REFERENCES: ReadonlyArray<{ readonly schema: 'app'; readonly table: string; readonly column: string; readonly key: string }> = [
  { schema: 'app', table: 'outbox', column: 'payload', key: 'sendId' },
  { schema: 'app', table: 'outbox', column: 'payload', key: 'enrolmentId' },
];

/** The catalogue changes only with migrations: read again after a minute, not for every erasure. */
const CACHE_MS = 60_000;
const cached = new WeakMap<object, Map<string, { at: number; columns: PersonColumn[] }>>();

export async function personColumns(db: Kysely<unknown>, schema: 'app' | 'vault'): Promise<PersonColumn[]> {
  const byDb = cached.get(db) ?? new Map<string, { at: number; columns: PersonColumn[] }>();
  cached.set(db, byDb);
  const hit = byDb.get(schema);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.columns;
  const columns = await readPersonColumns(db, schema);
  byDb.set(schema, { at: Date.now(), columns });
  return columns;
}

async function readPersonColumns(db: Kysely<unknown>, schema: 'app' | 'vault'): Promise<PersonColumn[]> {
  const rows = await sql<{ table: string; column: string; type: string }>`
    select c.relname as "table", a.attname as "column", t.typname as "type"
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    join pg_type t on t.oid = a.atttypid
    where n.nspname = ${schema} and c.relkind in ('r', 'p') and not c.relispartition
      and a.attnum > 0 and not a.attisdropped
      and (t.typname in ('uuid', 'bytea') or (t.typname = 'text' and a.attname like '%job_id'))
    order by 1, 2`.execute(db);
  return rows.rows
    .filter((r) => r.column !== 'source_id' && !Object.hasOwn(NOT_PERSON_COLUMNS, `${schema}.${r.table}.${r.column}`))
    .map((r) => ({ schema, table: r.table, column: r.column, kind: r.type === 'uuid' ? 'uuid' : r.type === 'bytea' ? 'hash' : 'job_id' }));
}

/** Tables in a schema (partitioned parents, not their partitions), for the deep scan. */
export async function tablesOf(db: Kysely<unknown>, schema: 'app' | 'vault'): Promise<string[]> {
  const rows = await sql<{ table: string }>`
    select c.relname as "table" from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relkind in ('r', 'p') and not c.relispartition order by 1`.execute(db);
  return rows.rows.map((r) => r.table);
}

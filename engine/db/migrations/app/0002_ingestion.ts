import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // A source is whatever sends data (a website, an app, a server): every datum carries the source it
  // came from (invariant 3). The write key is stored as a hash only.
  await sql`create table app.sources (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(name) between 1 and 100),
    write_key_hash bytea not null unique check (length(write_key_hash) = 32),
    write_key_prefix text not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
  )`.execute(db);

  // Pseudonymous profiles: a random id and non-identifying traits. Each trait keeps where and when
  // it was acquired: {"plan": {"v": "pro", "src": "<source id>", "at": "<time>"}}.
  await sql`create table app.profiles (
    id uuid primary key,
    source_id uuid not null references app.sources (id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    last_seen_at timestamptz not null,
    traits jsonb not null default '{}'::jsonb
  )`.execute(db);

  // Idempotency of ingestion (invariant 6): one row per (source, messageId) ever processed, so a
  // replayed event is recognized whatever time it is replayed at.
  await sql`create table app.event_receipts (
    source_id uuid not null,
    message_id text not null,
    received_at timestamptz not null,
    primary key (source_id, message_id)
  )`.execute(db);

  // Events the worker could not store (a value PostgreSQL refused): what was refused and why, never
  // the payload itself. Set aside one by one, so the rest of their batch is stored (invariant 6).
  await sql`create table app.event_rejections (
    id bigint generated always as identity primary key,
    source_id uuid not null,
    message_id text not null,
    received_at timestamptz not null,
    reason text not null,
    rejected_at timestamptz not null default now()
  )`.execute(db);

  // Behavioural events, partitioned by month of occurrence so retention drops whole partitions.
  // Partitions are created on demand by the events worker (engine/ingest/partitions.ts).
  await sql`create table app.events (
    id uuid not null default gen_random_uuid(),
    profile_id uuid,
    source_id uuid not null,
    message_id text not null,
    type text not null check (type in ('track', 'identify', 'page', 'screen', 'group', 'alias')),
    name text,
    occurred_at timestamptz not null,
    received_at timestamptz not null,
    properties jsonb not null default '{}'::jsonb,
    context jsonb not null default '{}'::jsonb,
    primary key (occurred_at, id)
  ) partition by range (occurred_at)`.execute(db);
  await sql`create index events_profile_idx on app.events (profile_id, occurred_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table app.events`.execute(db);
  await sql`drop table app.event_rejections`.execute(db);
  await sql`drop table app.event_receipts`.execute(db);
  await sql`drop table app.profiles`.execute(db);
  await sql`drop table app.sources`.execute(db);
}

import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // Every rule set a process ran, by version (a hash over its files): decisions point at what was live.
  await sql`create table app.rule_sets (
    version text primary key check (version ~ '^[0-9a-f]{64}$'),
    files jsonb not null,
    first_loaded_at timestamptz not null default now(),
    last_loaded_at timestamptz not null default now()
  )`.execute(db);

  // Segment membership per profile, kept by the events worker. recheck_at: when a sliding window can
  // change the answer with no new event; the recompute visits only rows that are due (partial index).
  await sql`create table app.segment_state (
    profile_id uuid not null,
    segment_id text not null,
    member boolean not null,
    changed_at timestamptz not null,
    recheck_at timestamptz,
    primary key (profile_id, segment_id)
  )`.execute(db);
  await sql`create index segment_state_members_idx on app.segment_state (segment_id, profile_id) where member`.execute(db);
  await sql`create index segment_state_recheck_idx on app.segment_state (recheck_at) where recheck_at is not null`.execute(db);

  // A person's journey through a campaign; one row per (campaign, person, entry), so a trigger
  // processed twice at once enrols once.
  await sql`create table app.enrolments (
    id uuid primary key default gen_random_uuid(),
    campaign_id text not null,
    profile_id uuid not null,
    entry integer not null check (entry >= 1),
    campaign_version text not null,
    rule_set_version text not null,
    state text not null check (state in ('active', 'completed', 'exited', 'ended')),
    journey jsonb not null,
    started_at timestamptz not null,
    wake_at timestamptz,
    finished_at timestamptz,
    finish_reason text,
    unique (campaign_id, profile_id, entry)
  )`.execute(db);
  await sql`create index enrolments_profile_idx on app.enrolments (profile_id, campaign_id)`.execute(db);
  await sql`create index enrolments_wake_idx on app.enrolments (wake_at) where state = 'active' and wake_at is not null`.execute(db);

  // Sends a journey scheduled: the durable record the email worker works from (a Redis loss loses
  // no send). One per (enrolment, step).
  await sql`create table app.scheduled_sends (
    id uuid primary key default gen_random_uuid(),
    enrolment_id uuid not null references app.enrolments (id) on delete cascade,
    profile_id uuid not null,
    campaign_id text not null,
    step_id text not null,
    template text not null,
    due_at timestamptz not null,
    deferred_from timestamptz,
    state text not null default 'scheduled' check (state in ('scheduled', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    state_reason text,
    created_at timestamptz not null default now(),
    unique (enrolment_id, step_id)
  )`.execute(db);
  await sql`create index scheduled_sends_profile_idx on app.scheduled_sends (profile_id)`.execute(db);
  await sql`create index scheduled_sends_due_idx on app.scheduled_sends (due_at) where state = 'scheduled'`.execute(db);

  // The transactional outbox (DESIGN.md "Stores"): jobs that must follow a commit (a journey's wake-up)
  // are written in the same transaction and relayed to Redis after it; a relay that fails, or a
  // Redis that lost them, leaves PostgreSQL the record.
  await sql`create table app.outbox (
    id bigint generated always as identity primary key,
    queue text not null,
    job_name text not null,
    job_id text not null,
    payload jsonb not null,
    run_at timestamptz not null,
    created_at timestamptz not null default now(),
    relayed_at timestamptz
  )`.execute(db);
  await sql`create index outbox_unrelayed_idx on app.outbox (id) where relayed_at is null`.execute(db);

  // Behaviour conditions read a person's recent events by name (engine/automation/snapshots.ts):
  // without this, a very active person's whole window is scanned on each of their batches.
  await sql`create index events_profile_name_idx on app.events (profile_id, name, occurred_at)`.execute(db);

  // Decisions of the rules: which rule and version decided, and the outcome.
  await sql`alter table app.decisions add column rule_id text, add column rule_version text, add column outcome text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table app.decisions drop column rule_id, drop column rule_version, drop column outcome`.execute(db);
  await sql`drop index app.events_profile_name_idx`.execute(db);
  await sql`drop table app.outbox`.execute(db);
  await sql`drop table app.scheduled_sends`.execute(db);
  await sql`drop table app.enrolments`.execute(db);
  await sql`drop table app.segment_state`.execute(db);
  await sql`drop table app.rule_sets`.execute(db);
}

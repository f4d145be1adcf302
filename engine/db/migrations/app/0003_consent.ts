import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // The consent ledger: every grant, withdrawal and objection, with what proves it (GDPR Art. 7(1):
  // the controller must be able to demonstrate consent). Append-only: the current state is derived
  // from it (app.consent_current), never edited.
  await sql`create table app.consent_ledger (
    id bigint generated always as identity primary key,
    profile_id uuid not null,
    purpose text not null check (purpose ~ '^[a-z][a-z0-9_]{0,62}$'),
    decision text not null check (decision in ('granted', 'withdrawn', 'objected')),
    -- When the person acted (the event's time); recorded_at is when the engine wrote it down.
    occurred_at timestamptz not null,
    recorded_at timestamptz not null default now(),
    source_kind text not null check (source_kind in
      ('write_key', 'form', 'url', 'email_link', 'preference_page', 'admin', 'import', 'browser_signal')),
    source_id uuid,
    source_ref text check (length(source_ref) <= 500),
    method text not null check (method in
      ('form', 'banner', 'double_opt_in', 'api', 'email_link', 'preference_page', 'browser_signal', 'tcf', 'admin', 'import')),
    notice_id text check (length(notice_id) <= 100),
    notice_version integer,
    notice_hash bytea check (length(notice_hash) = 32),
    ip_prefix text check (length(ip_prefix) <= 64),
    event_message_id text check (length(event_message_id) <= 200),
    -- A row copied to the surviving profile when two profiles merged: the original row's id.
    merged_from bigint,
    check ((notice_id is null) = (notice_version is null) and (notice_id is null) = (notice_hash is null))
  )`.execute(db);
  await sql`create index consent_ledger_current_idx on app.consent_ledger (profile_id, purpose, recorded_at desc, id desc)`.execute(db);
  // A merge applied twice (after a crash) copies each row once.
  await sql`create unique index consent_ledger_merged_idx on app.consent_ledger (profile_id, merged_from) where merged_from is not null`.execute(db);

  // Only erasure (GDPR Art. 17) removes ledger rows, and it says so for its own transaction with
  // `set local consentflow.erasure = 'on'`. Nothing updates or truncates them.
  await sql`create function app.consent_ledger_append_only() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and current_setting('consentflow.erasure', true) = 'on' then
        return old;
      end if;
      raise exception 'app.consent_ledger is append-only: % refused (record a new grant, withdrawal or objection instead)', tg_op
        using errcode = '55000';
    end
  $$`.execute(db);
  await sql`create trigger consent_ledger_no_change before update or delete on app.consent_ledger
    for each row execute function app.consent_ledger_append_only()`.execute(db);
  await sql`create trigger consent_ledger_no_truncate before truncate on app.consent_ledger
    for each statement execute function app.consent_ledger_append_only()`.execute(db);

  // The current state: the latest row per (profile, purpose) in the order the engine recorded them.
  // Not by occurred_at: that is the client's clock, evidence only; a withdrawal stamped by a slow
  // clock must still win over the grant before it (GDPR Art. 7(3)).
  await sql`create view app.consent_current as
    select distinct on (profile_id, purpose)
      profile_id, purpose, decision, occurred_at, recorded_at, method, source_kind, notice_id, notice_version, id as ledger_id
    from app.consent_ledger
    order by profile_id, purpose, recorded_at desc, id desc`.execute(db);

  // Double opt-in: a sign-up waiting for the person to confirm by the emailed link. Granted only on
  // confirmation; expires unconfirmed.
  await sql`create table app.consent_confirmations (
    id uuid primary key,
    profile_id uuid not null,
    purposes text[] not null check (cardinality(purposes) > 0),
    notice_id text not null,
    notice_version integer not null,
    notice_hash bytea not null check (length(notice_hash) = 32),
    source_id uuid,
    source_ref text check (length(source_ref) <= 500),
    ip_prefix text check (length(ip_prefix) <= 64),
    event_message_id text check (length(event_message_id) <= 200),
    requested_at timestamptz not null,
    expires_at timestamptz not null,
    email_sent_at timestamptz,
    confirmed_at timestamptz
  )`.execute(db);
  await sql`create index consent_confirmations_profile_idx on app.consent_confirmations (profile_id)`.execute(db);
  await sql`create index consent_confirmations_unsent_idx on app.consent_confirmations (requested_at)
    where email_sent_at is null and confirmed_at is null`.execute(db);

  // Events a person's consent does not let us tie to them (no analytics, or a browser privacy
  // signal): kept only as anonymous counts per day, source, type and name.
  await sql`create table app.event_counts (
    day date not null,
    source_id uuid not null,
    type text not null,
    name text not null default '',
    count bigint not null check (count > 0),
    primary key (day, source_id, type, name)
  )`.execute(db);

  // What the engine decided for a person and why ("why did / didn't this person get this email").
  await sql`create table app.decisions (
    id bigint generated always as identity primary key,
    profile_id uuid not null,
    action text not null check (length(action) <= 200),
    allowed boolean not null,
    reason text not null,
    purposes text[] not null,
    missing text[] not null default '{}',
    ref jsonb not null default '{}'::jsonb,
    decided_at timestamptz not null default now()
  )`.execute(db);
  await sql`create index decisions_profile_idx on app.decisions (profile_id, decided_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table app.decisions`.execute(db);
  await sql`drop table app.event_counts`.execute(db);
  await sql`drop table app.consent_confirmations`.execute(db);
  await sql`drop view app.consent_current`.execute(db);
  await sql`drop table app.consent_ledger`.execute(db);
  await sql`drop function app.consent_ledger_append_only()`.execute(db);
}

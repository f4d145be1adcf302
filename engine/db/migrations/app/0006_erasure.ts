import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // Erasure requests (GDPR Art. 17), committed before they are answered. While one runs, it keeps
  // the work it needs to resume after a crash (the person's profile ids, blind indexes, job ids);
  // the last step writes the receipt and clears all of that in one transaction, so a completed
  // request holds no identifier of the person (DESIGN.md invariant 4). `subject_sealed` holds the
  // identifiers as given, sealed under a key derived from the master key, for the processors'
  // webhooks (Art. 19) and the deep scan; it is cleared with the rest.
  await sql`create table app.erasure_requests (
    id uuid primary key,
    identifier_kind text check (identifier_kind in ('email', 'user', 'anonymous')),
    identifier_hash bytea check (length(identifier_hash) = 32),
    requested_by text not null check (length(requested_by) <= 200),
    origin text not null check (origin in ('admin_api', 'cli', 'self_service', 'retention')),
    requested_at timestamptz not null default now(),
    deadline_at timestamptz not null,
    state text not null default 'pending' check (state in ('pending', 'running', 'completed', 'failed')),
    step integer not null default 0 check (step between 0 and 8),
    deep_verify boolean not null default false,
    work jsonb not null default '{}'::jsonb,
    subject_sealed jsonb,
    counts jsonb not null default '{}'::jsonb,
    webhooks jsonb not null default '[]'::jsonb,
    verification jsonb,
    receipt jsonb,
    receipt_signature text,
    attempts integer not null default 0,
    last_error text check (length(last_error) <= 1000),
    updated_at timestamptz not null default now(),
    completed_at timestamptz,
    check ((state = 'completed') = (receipt is not null)),
    check (state <> 'completed' or (identifier_hash is null and subject_sealed is null and work = '{}'::jsonb))
  )`.execute(db);
  // One open request per identifier: asking twice while the first runs returns the first.
  await sql`create unique index erasure_requests_open_idx on app.erasure_requests (identifier_kind, identifier_hash)
    where state in ('pending', 'running')`.execute(db);
  await sql`create index erasure_requests_unfinished_idx on app.erasure_requests (deadline_at) where state <> 'completed'`.execute(db);

  // The outbox carries send and wake-up jobs by id in its payload: erasure finds a person's rows by
  // index, so its cost grows with the person's data, not the table's.
  await sql`create index outbox_send_idx on app.outbox ((payload ->> 'sendId')) where payload ? 'sendId'`.execute(db);
  await sql`create index outbox_enrolment_idx on app.outbox ((payload ->> 'enrolmentId')) where payload ? 'enrolmentId'`.execute(db);
  await sql`create index outbox_job_idx on app.outbox (job_id)`.execute(db);

  // The keyed hash of an erased address, so a later import does not bring the person back.
  await sql`alter table app.suppressions drop constraint suppressions_reason_check`.execute(db);
  await sql`alter table app.suppressions add constraint suppressions_reason_check
    check (reason in ('hard_bounce', 'complaint', 'manual', 'erased'))`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`delete from app.suppressions where reason = 'erased'`.execute(db);
  await sql`alter table app.suppressions drop constraint suppressions_reason_check`.execute(db);
  await sql`alter table app.suppressions add constraint suppressions_reason_check check (reason in ('hard_bounce', 'complaint', 'manual'))`.execute(db);
  await sql`drop index app.outbox_job_idx`.execute(db);
  await sql`drop index app.outbox_enrolment_idx`.execute(db);
  await sql`drop index app.outbox_send_idx`.execute(db);
  await sql`drop table app.erasure_requests`.execute(db);
}

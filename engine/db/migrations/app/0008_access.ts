import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // Keys that end on their own (a contractor's access) and show when they were last used, so an
  // unused key can be found and revoked (GDPR Art. 32(1)(b); OWASP ASVS 5.0 V7).
  await sql`alter table app.api_keys add column expires_at timestamptz, add column last_used_at timestamptz`.execute(db);

  // Browser calls are accepted only from the origins a source lists (OWASP ASVS 5.0 V3.4.2).
  await sql`alter table app.sources add column allowed_origins text[] not null default '{}'`.execute(db);

  // The audit log (GDPR Art. 5(2), 30, 32; DESIGN.md invariant 5): who did what, to whom (a keyed
  // pseudonym or a request id, never PII), when, with what outcome and, for a decryption, why.
  // Each entry's hash covers the previous entry's hash, keyed with a secret the database does not
  // hold: an edited, removed or inserted entry breaks the chain where it happened, and whoever has
  // only the database cannot write a chain that verifies. seq has no gaps by construction (each
  // append takes the next number under one lock), so a gap is a removal.
  await sql`create table app.audit_log (
    seq bigint primary key check (seq > 0),
    at timestamptz not null,
    actor text not null check (length(actor) between 1 and 200),
    action text not null check (action ~ '^[a-z][a-z0-9_.]{0,99}$'),
    target text check (length(target) <= 200),
    outcome text not null check (outcome in ('ok', 'denied', 'not_found', 'invalid', 'failed')),
    reason text check (length(reason) <= 500),
    detail jsonb not null default '{}',
    prev_hash bytea not null check (length(prev_hash) = 32),
    hash bytea not null check (length(hash) = 32)
  )`.execute(db);
  await sql`create index audit_log_at_idx on app.audit_log (at)`.execute(db);
  await sql`create index audit_log_target_idx on app.audit_log (target, seq) where target is not null`.execute(db);
  await sql`create function app.audit_log_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'app.audit_log is append-only: % refused', tg_op using errcode = '55000';
    end
  $$`.execute(db);
  await sql`create trigger audit_log_no_change before update or delete on app.audit_log
    for each row execute function app.audit_log_append_only()`.execute(db);
  await sql`create trigger audit_log_no_truncate before truncate on app.audit_log
    for each statement execute function app.audit_log_append_only()`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table app.audit_log`.execute(db);
  await sql`drop function app.audit_log_append_only()`.execute(db);
  await sql`alter table app.sources drop column allowed_origins`.execute(db);
  await sql`alter table app.api_keys drop column expires_at, drop column last_used_at`.execute(db);
}

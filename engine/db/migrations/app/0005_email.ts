import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // Addresses that must never be mailed again (a hard bounce), by blind index only: the address
  // itself stays in the vault (DESIGN.md invariant 1); the hash also survives erasure (invariant 4).
  await sql`create table app.suppressions (
    hash bytea primary key check (length(hash) = 32),
    reason text not null check (reason in ('hard_bounce', 'complaint', 'manual')),
    detail text check (length(detail) <= 500),
    created_at timestamptz not null default now()
  )`.execute(db);

  // What happened to each send: when it was claimed (a crash between SMTP's answer and the record
  // leaves it 'sending' with this time), the Message-ID it went out with, how many attempts.
  await sql`alter table app.scheduled_sends
    add column claimed_at timestamptz,
    add column sent_at timestamptz,
    add column message_id text check (length(message_id) <= 200),
    add column attempts integer not null default 0`.execute(db);

  // The source of the events the engine itself records about its emails (`Email Opened`,
  // `Email Clicked`): every datum carries a source (invariant 3). Its write key hash is random, so
  // no key can ever authenticate as it, and it is revoked, so it is never listed nor accepted.
  await sql`insert into app.sources (id, name, write_key_hash, write_key_prefix, revoked_at)
    values ('00000000-0000-4000-8000-00000000e3a1', 'consentflow email tracking',
            decode(md5(random()::text) || md5(random()::text), 'hex'), '(none)', now())`.execute(db);

  // One row per broadcast tick: the guard that makes two scheduler processes run a tick once, and
  // the keyset cursor over the segment's members, advanced in the same transaction as each page.
  await sql`create table app.broadcast_ticks (
    campaign_id text not null,
    tick_at timestamptz not null,
    campaign_version text not null,
    started_at timestamptz not null default now(),
    cursor uuid,
    members integer not null default 0,
    finished_at timestamptz,
    primary key (campaign_id, tick_at)
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table app.broadcast_ticks`.execute(db);
  await sql`delete from app.sources where id = '00000000-0000-4000-8000-00000000e3a1'`.execute(db);
  await sql`alter table app.scheduled_sends drop column claimed_at, drop column sent_at, drop column message_id, drop column attempts`.execute(db);
  await sql`drop table app.suppressions`.execute(db);
}

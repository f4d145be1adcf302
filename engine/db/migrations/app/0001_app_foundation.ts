import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table app.api_keys (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(name) between 1 and 100),
    role text not null check (role in ('marketer', 'operator', 'privacy_officer', 'admin')),
    key_hash bytea not null unique check (length(key_hash) = 32),
    key_prefix text not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
  )`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table app.api_keys`.execute(db);
}

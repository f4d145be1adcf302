import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
// The vault: everything that identifies a person, and nothing in plaintext but blind indexes and ids
// (GDPR Art. 4(5): the re-identifying information kept apart from the pseudonymised data).
export async function up(db: Kysely<unknown>): Promise<void> {
  // One data key per person, wrapped by the master key. Deleting the row is crypto-shredding: every
  // copy of the person's encrypted fields, backups included, becomes unreadable (Art. 17).
  await sql`create table vault.subject_keys (
    profile_id uuid primary key,
    wrapped_key bytea not null,
    created_at timestamptz not null default now()
  )`.execute(db);

  // Identifiers → profile, by blind index (HMAC with the pseudonym key of the normalized value).
  await sql`create table vault.identities (
    kind text not null check (kind in ('email', 'user', 'anonymous', 'phone')),
    hash bytea not null check (length(hash) = 32),
    profile_id uuid not null references vault.subject_keys (profile_id) on delete cascade,
    source_id uuid not null,
    created_at timestamptz not null default now(),
    primary key (kind, hash)
  )`.execute(db);
  await sql`create index identities_profile_idx on vault.identities (profile_id)`.execute(db);

  // Encrypted PII fields (email, name, phone…), AES-256-GCM under the person's data key.
  await sql`create table vault.subject_fields (
    profile_id uuid not null references vault.subject_keys (profile_id) on delete cascade,
    field text not null,
    ciphertext bytea not null,
    source_id uuid not null,
    acquired_at timestamptz not null,
    primary key (profile_id, field)
  )`.execute(db);

  // Merges of an anonymous profile into a known one, kept until the app schema has applied them
  // (the vault may be another database, so the two cannot commit together).
  await sql`create table vault.profile_merges (
    loser_id uuid primary key,
    winner_id uuid not null,
    merged_at timestamptz not null default now(),
    applied_at timestamptz
  )`.execute(db);
  await sql`create index profile_merges_pending_idx on vault.profile_merges (merged_at) where applied_at is null`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table vault.profile_merges, vault.subject_fields, vault.identities, vault.subject_keys`.execute(db);
}

import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // Identifiers of erased people (blind indexes only). Events still in the queue, or sent later by a
  // browser that kept its cookie, are dropped instead of becoming a new profile. They expire (the
  // erasure worker deletes them): long enough for queues, retries and client-side buffers to drain.
  await sql`create table vault.erasure_tombstones (
    kind text not null check (kind in ('email', 'user', 'anonymous', 'phone')),
    hash bytea not null check (length(hash) = 32),
    request_id uuid not null,
    erased_at timestamptz not null default now(),
    expires_at timestamptz not null,
    primary key (kind, hash)
  )`.execute(db);
  await sql`create index erasure_tombstones_expiry_idx on vault.erasure_tombstones (expires_at)`.execute(db);

  // Erasure looks a person up by every blind index it knew, of whatever kind (its check by index,
  // engine/privacy/erasure/verify.ts), and finds merged profiles by their winner: both by index, so
  // an erasure's cost grows with the person's data, not with the vault's.
  await sql`create index identities_hash_idx on vault.identities (hash)`.execute(db);
  await sql`create index profile_merges_winner_idx on vault.profile_merges (winner_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index vault.profile_merges_winner_idx`.execute(db);
  await sql`drop index vault.identities_hash_idx`.execute(db);
  await sql`drop table vault.erasure_tombstones`.execute(db);
}

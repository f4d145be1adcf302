import { type Kysely, sql } from 'kysely';

// Frozen once landed: change the schema with a new migration, never by editing this one.
export async function up(db: Kysely<unknown>): Promise<void> {
  // Retention (GDPR Art. 5(1)(e), engine/privacy/retention): inactive profiles are found in pages,
  // keyset over (last_seen_at, id), oldest first; decisions by age. Without these each run would
  // read the whole table.
  await sql`create index profiles_last_seen_idx on app.profiles (last_seen_at, id)`.execute(db);
  await sql`create index decisions_decided_at_idx on app.decisions (decided_at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index app.decisions_decided_at_idx`.execute(db);
  await sql`drop index app.profiles_last_seen_idx`.execute(db);
}

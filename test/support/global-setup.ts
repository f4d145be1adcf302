import pg from 'pg';
import { randomSuffix, TEST_DATABASE_ADMIN_URL } from './env';

/**
 * Names this run (its queue prefixes carry the name: env.ts), and removes databases left by an
 * earlier run that was killed before its tests could drop them.
 */
export default async function globalSetup(): Promise<void> {
  process.env.CF_TEST_RUN ??= randomSuffix();
  const client = new pg.Client({ connectionString: TEST_DATABASE_ADMIN_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `select datname from pg_database where datname like 'cf\\_test\\_%' and (now() - (pg_stat_file('base/' || oid || '/PG_VERSION')).modification) > interval '1 hour'`,
    );
    for (const row of rows) await client.query(`drop database if exists ${row.datname} with (force)`);
  } catch {
    // pg_stat_file needs superuser; without it, stale databases are only left behind, not harmful.
  } finally {
    await client.end();
  }
}

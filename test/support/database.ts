import pg from 'pg';
import { TEST_DATABASE_ADMIN_URL, randomSuffix } from './env';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A fresh database per test file, so schemas `app` and `vault` start empty and nothing is shared. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `cf_test_${randomSuffix()}`;
  await admin((client) => client.query(`create database ${name}`));
  const url = new URL(TEST_DATABASE_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => admin((client) => client.query(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

import { type Kysely, sql } from 'kysely';
import type { Database } from '../../engine/db/types';
import type { QueueName } from '../../engine/queues/catalog';
import { createSource } from '../../engine/ingest/sources';
import { receiptMessageId } from '../../engine/events/rows';
import type { Services } from '../../engine/runtime/services';
import { runProcess } from '../../workers/process';
import { openTestServices, type TestServices } from './services';
import { waitFor } from './wait';

export interface TestEngine extends TestServices {
  readonly url: string;
  readonly writeKey: string;
  readonly sourceId: string;
  stop(): Promise<void>;
}

/** API and events worker over real PostgreSQL and Redis, composed as `consentflow start` does. */
export async function startTestEngine(
  env: Record<string, string | undefined> = {},
  queues: readonly QueueName[] = ['events'],
): Promise<TestEngine> {
  const opened = await openTestServices({ LOG_LEVEL: 'info', ...env });
  const running = await runProcess(opened.services, { api: true, queues });
  const source = await createSource(opened.services.databases.db, 'test site');
  return {
    ...opened,
    url: running.url as string,
    writeKey: source.writeKey,
    sourceId: source.id,
    async stop() {
      await running.stop();
      await opened.database.drop();
    },
  };
}

export function basicAuth(writeKey: string): string {
  return `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

export async function countEvents(services: Services, where = sql`true`): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*)::text as n from app.events where ${where}`.execute(services.databases.db);
  return Number(rows[0]?.n ?? 0);
}

/** Waits until the events worker has stored `count` events matching `where`. */
export async function waitForEvents(services: Services, count: number, where = sql`true`): Promise<void> {
  await waitFor(async () => (await countEvents(services, where)) >= count, { what: `${count} stored events`, timeoutMs: 20_000 });
}

/** Every row of every table in schema `app`, as text: what the PII scans search. */
export async function dumpAppSchema(db: Kysely<Database>): Promise<string> {
  const tables = await sql<{ table_name: string }>`
    select table_name from information_schema.tables where table_schema = 'app' and table_type = 'BASE TABLE'`.execute(db);
  const parts: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await sql<{ row: string }>`select t::text as row from ${sql.table(`app.${table_name}`)} t`.execute(db);
    parts.push(`## ${table_name}`, ...rows.rows.map((r) => r.row));
  }
  return parts.join('\n');
}

/** Waits until the events worker has processed these messageIds (stored, counted or deduplicated). */
export async function waitForReceipts(services: Services, messageIds: readonly string[]): Promise<void> {
  await waitFor(
    async () =>
      (
        await services.databases.db
          .selectFrom('app.event_receipts')
          .select('message_id')
          .where('message_id', 'in', messageIds.map((id) => receiptMessageId(services.keys.pseudonym, id)))
          .execute()
      ).length ===
      messageIds.length,
    { what: `receipts for ${messageIds.join(', ')}` },
  );
}

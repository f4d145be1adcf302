import { type RawBuilder, sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Databases } from '../../db/connect';
import { QUEUE_NAMES, type QueueName } from '../../queues/catalog';
import type { Queues } from '../../queues/producer';
import { JSON_REFERENCES, personColumns } from './person-columns';
import type { ErasureWork } from './work';

/**
 * Step 7: looks the person up again, by index, everywhere a person can be referred to (the columns
 * come from the catalogue: person-columns.ts) and their jobs in Redis by id, for every identifier
 * the erasure knew. The result is recorded and goes in the receipt.
 */

export interface Finding {
  readonly store: 'postgres' | 'redis';
  readonly where: string;
  readonly count: number;
}

export interface Verification {
  readonly clean: boolean;
  readonly checkedColumns: number;
  readonly checkedJobs: number;
  readonly identifiers: number;
  readonly findings: Finding[];
  readonly deep?: { readonly clean: boolean; readonly findings: Finding[]; readonly needles: number };
}

export function uuidsOf(work: ErasureWork): string[] {
  return [...new Set([...work.profileIds, ...work.sendIds, ...work.enrolmentIds, ...work.confirmationIds])];
}

/** One statement per schema: a count per place, each by its index (one round trip, not thirty). */
async function checkSchema(db: Kysely<unknown>, schema: 'app' | 'vault', work: ErasureWork, findings: Finding[]): Promise<number> {
  const columns = await personColumns(db, schema);
  const uuids = uuidsOf(work);
  const hashes = work.identities.map((i) => Buffer.from(i.hash, 'hex'));
  const jobIds = work.jobs.map((j) => j.id);
  const counts: RawBuilder<unknown>[] = [];
  for (const c of columns) {
    const values = c.kind === 'uuid' ? uuids : c.kind === 'hash' ? hashes : jobIds;
    if (values.length === 0) continue;
    const cast = c.kind === 'uuid' ? sql`::uuid[]` : c.kind === 'hash' ? sql`::bytea[]` : sql`::text[]`;
    counts.push(sql`select ${`${schema}.${c.table}.${c.column}`}::text as place, count(*)::text as n
      from ${sql.table(`${schema}.${c.table}`)} where ${sql.ref(c.column)} = any(${values}${cast})`);
  }
  const references = JSON_REFERENCES.filter((j) => j.schema === schema);
  if (uuids.length > 0) {
    for (const r of references) {
      counts.push(sql`select ${`${schema}.${r.table}.${r.column}->${r.key}`}::text as place, count(*)::text as n
        from ${sql.table(`${schema}.${r.table}`)} where ${sql.ref(r.column)} ? ${r.key} and ${sql.ref(r.column)} ->> ${r.key} = any(${uuids}::text[])`);
    }
  }
  if (counts.length > 0) {
    const result = await sql<{ place: string; n: string }>`${sql.join(counts, sql` union all `)}`.execute(db);
    for (const row of result.rows) if (Number(row.n) > 0) findings.push({ store: 'postgres', where: row.place, count: Number(row.n) });
  }
  return columns.length + references.length;
}

export async function verifyByIndex(databases: Databases, queues: Queues, work: ErasureWork): Promise<Verification> {
  const findings: Finding[] = [];
  let checkedColumns = await checkSchema(databases.db as unknown as Kysely<unknown>, 'app', work, findings);
  checkedColumns += await checkSchema(databases.vaultDb as unknown as Kysely<unknown>, 'vault', work, findings);
  const left = new Map<string, number>();
  for (const { queue, id } of work.jobs) {
    if (!QUEUE_NAMES.includes(queue as QueueName)) continue;
    if (await queues.queue(queue as QueueName).getJob(id)) left.set(queue, (left.get(queue) ?? 0) + 1);
  }
  // By queue and count only: a job id carries a pseudonym, and findings go in the receipt.
  for (const [queue, count] of left) findings.push({ store: 'redis', where: `queue ${queue}`, count });
  return {
    clean: findings.length === 0,
    checkedColumns,
    checkedJobs: work.jobs.length,
    identifiers: uuidsOf(work).length + work.identities.length,
    findings,
  };
}

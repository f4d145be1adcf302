import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import { clusterMasters } from '../../redis/connection';
import type { Databases } from '../../db/connect';
import { jobDefinition, isQueueName } from '../../queues/catalog';
import { unseal } from '../../queues/sealing';
import { tablesOf } from './person-columns';
import type { Finding } from './verify';

/**
 * The deep scan (`subject verify-erasure ID --deep`, and in the tests): every row of every table in
 * both schemas, as text, and every Redis key under the engine's prefix with its value (job payloads
 * unsealed), searched for each needle: the identifiers as given, the address, pseudonyms, blind
 * indexes as hex, job ids. Costly (it reads everything) and therefore on demand. The remnants kept
 * on purpose are skipped: the suppression hash, the tombstones until they expire, the request's own row.
 */

export interface DeepScanInput {
  readonly needles: readonly string[];
  /** Blind indexes (hex) that may stay in app.suppressions (ERASURE_SUPPRESS). */
  readonly allowedSuppressionHashes: readonly string[];
  readonly requestId: string;
}

async function scanSchema(db: Kysely<unknown>, schema: 'app' | 'vault', input: DeepScanInput, findings: Finding[]): Promise<void> {
  const needles = input.needles.map((n) => n.toLowerCase()).filter((n) => n.length >= 6);
  for (const table of await tablesOf(db, schema)) {
    if (schema === 'vault' && table === 'erasure_tombstones') continue;
    let list = needles;
    if (schema === 'app' && table === 'suppressions') list = needles.filter((n) => !input.allowedSuppressionHashes.includes(n));
    const own = schema === 'app' && table === 'erasure_requests' ? sql`and t.id <> ${input.requestId}::uuid` : sql``;
    const result = await sql<{ n: string }>`
      select count(*)::text as n from ${sql.table(`${schema}.${table}`)} as t
      where exists (select 1 from unnest(${list}::text[]) as needle where strpos(lower(t::text), needle) > 0) ${own}`.execute(db);
    const n = Number(result.rows[0]?.n ?? 0);
    if (n > 0) findings.push({ store: 'postgres', where: `${schema}.${table}`, count: n });
  }
}

/** A job hash's payload, opened when the catalog says it is sealed. */
function jobText(key: string, fields: Record<string, string>, prefix: string, sealingKey: Buffer): string {
  const parts = key.slice(prefix.length + 1).split(':');
  const queue = parts[0] ?? '';
  const name = fields.name;
  if (fields.data && name && isQueueName(queue) && jobDefinition(queue, name)?.sealed) {
    try {
      return JSON.stringify(unseal(sealingKey, `${queue}/${name}`, JSON.parse(fields.data)));
    } catch {
      return '';
    }
  }
  return '';
}

export async function deepScanRedis(redis: Redis, prefix: string, sealingKey: Buffer, needles: readonly string[], findings: Finding[]): Promise<number> {
  const lowered = needles.map((n) => n.toLowerCase()).filter((n) => n.length >= 6);
  let keys = 0;
  let hits = 0;
  // SCAN walks the keys of the node it is sent to: on a Redis Cluster, every master in turn (each
  // holds its own slots' keys; reading the values goes through the cluster client, routed by key).
  for (const node of clusterMasters(redis)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', '1000');
      cursor = next;
      for (const key of batch) {
        keys++;
        const type = await redis.type(key);
        let text = key;
        if (type === 'string') text += await redis.get(key);
        else if (type === 'hash') {
          const fields = await redis.hgetall(key);
          text += JSON.stringify(fields) + jobText(key, fields, prefix, sealingKey);
        } else if (type === 'list') text += JSON.stringify(await redis.lrange(key, 0, -1));
        else if (type === 'set') text += JSON.stringify(await redis.smembers(key));
        else if (type === 'zset') text += JSON.stringify(await redis.zrange(key, '0', '-1'));
        else if (type === 'stream') text += JSON.stringify(await redis.xrange(key, '-', '+'));
        const lower = text.toLowerCase();
        if (lowered.some((n) => lower.includes(n))) hits++;
      }
    } while (cursor !== '0');
  }
  if (hits > 0) findings.push({ store: 'redis', where: `keys under ${prefix}`, count: hits });
  return keys;
}

export async function deepScan(databases: Databases, redis: Redis, prefix: string, sealingKey: Buffer, input: DeepScanInput): Promise<{ clean: boolean; findings: Finding[]; needles: number }> {
  const findings: Finding[] = [];
  await scanSchema(databases.db as unknown as Kysely<unknown>, 'app', input, findings);
  await scanSchema(databases.vaultDb as unknown as Kysely<unknown>, 'vault', input, findings);
  await deepScanRedis(redis, prefix, sealingKey, input.needles, findings);
  return { clean: findings.length === 0, findings, needles: input.needles.length };
}

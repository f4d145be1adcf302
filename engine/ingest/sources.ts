import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { z } from 'zod';
import type { DbOrTrx } from '../db/types';

export interface Source {
  readonly id: string;
  readonly name: string;
  readonly writeKeyPrefix: string;
  readonly createdAt: string;
  /** Origins whose browsers may call the API with this source's key (`*`: any); empty: none. */
  readonly allowedOrigins: readonly string[];
}

/** What the API needs of a source on each request (engine/ingest/source-cache.ts). */
export interface ActiveSource {
  readonly id: string;
  readonly allowedOrigins: readonly string[];
}

const ORIGIN_RULE = 'expected an origin scheme://host[:port] without a path, such as https://www.example.com, or * for any origin';
const HOST = /^(?:[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])$/;

/**
 * An origin as browsers send it in the `Origin` header (RFC 6454 §6.1): lower case, IDN in
 * punycode, no default port. Returns undefined for anything else: a path, a query, user info,
 * a wildcard host, or `null` (sandboxed frames and files send it; it would let any of them in).
 */
export function normalizeOrigin(text: string): string | undefined {
  if (text === '*') return '*';
  const match = /^([a-z][a-z0-9+.-]*):\/\/([^/?#@\s\\]+)\/?$/i.exec(text);
  if (!match) return undefined;
  const scheme = (match[1] as string).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') {
    // An app's own scheme (capacitor://localhost, chrome-extension://id): compared as written, in lower case.
    const host = (match[2] as string).toLowerCase();
    return /^[a-z0-9._-]+(?::\d{1,5})?$/.test(host) ? `${scheme}://${host}` : undefined;
  }
  try {
    const url = new URL(text);
    return HOST.test(url.hostname) ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

/** One allowed origin, as the CLI takes it: normalized, or a clear error. */
export const AllowedOrigin = z.string().trim().transform((text, ctx) => {
  const origin = normalizeOrigin(text);
  if (origin === undefined) {
    ctx.issues.push({ code: 'custom', message: `'${text}': ${ORIGIN_RULE}`, input: text });
    return z.NEVER;
  }
  return origin;
});
export type AllowedOrigin = z.infer<typeof AllowedOrigin>;

type SourceRow = { id: string; name: string; write_key_prefix: string; created_at: Date; allowed_origins: string[] };

function toSource(row: SourceRow): Source {
  return { id: row.id, name: row.name, writeKeyPrefix: row.write_key_prefix, createdAt: row.created_at.toISOString(), allowedOrigins: row.allowed_origins };
}

const WRITE_KEY_PREFIX = 'wk_';

/**
 * Write keys are public in a web page, so they authenticate a source rather than a person; still,
 * only their hash is stored, so a database dump does not hand out the right to send as a source.
 */
export function hashWriteKey(writeKey: string): Buffer {
  return createHash('sha256').update(writeKey, 'utf8').digest();
}

/** `allowedOrigins` must already be normalized (AllowedOrigin). */
export async function createSource(db: DbOrTrx, name: string, allowedOrigins: readonly string[] = []): Promise<Source & { writeKey: string }> {
  const writeKey = `${WRITE_KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
  const row = await db
    .insertInto('app.sources')
    .values({ name, write_key_hash: hashWriteKey(writeKey), write_key_prefix: writeKey.slice(0, 10), allowed_origins: [...new Set(allowedOrigins)] })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { ...toSource(row), writeKey };
}

export async function findSourceByWriteKey(db: DbOrTrx, writeKey: string): Promise<ActiveSource | undefined> {
  if (writeKey.length === 0 || writeKey.length > 200) return undefined;
  const row = await db
    .selectFrom('app.sources')
    .select(['id', 'allowed_origins'])
    .where('write_key_hash', '=', hashWriteKey(writeKey))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? { id: row.id, allowedOrigins: row.allowed_origins } : undefined;
}

export async function listSources(db: DbOrTrx): Promise<Source[]> {
  const rows = await db.selectFrom('app.sources').selectAll().where('revoked_at', 'is', null).orderBy('created_at').execute();
  return rows.map(toSource);
}

/**
 * Adds and removes allowed origins of an active source in one statement (normalized values; a
 * removal wins over an addition of the same origin). Returns the new list, or undefined when no
 * active source has that id. The API sees the change within its cache time (5 s).
 */
export async function changeAllowedOrigins(
  db: DbOrTrx,
  id: string,
  change: { readonly add: readonly string[]; readonly remove: readonly string[] },
): Promise<readonly string[] | undefined> {
  const row = await db
    .updateTable('app.sources')
    .set({
      allowed_origins: sql<string[]>`array(
        select o from unnest(allowed_origins || ${[...change.add]}::text[]) with ordinality as t(o, n)
        where o <> all(${[...change.remove]}::text[])
        group by o order by min(n))`,
    })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .returning('allowed_origins')
    .executeTakeFirst();
  return row?.allowed_origins;
}

/** Every origin some active source allows: what a CORS preflight, which carries no write key, may be told. */
export async function allowedOriginsOfActiveSources(db: DbOrTrx): Promise<string[]> {
  const { rows } = await sql<{ origin: string }>`
    select distinct unnest(allowed_origins) as origin from app.sources where revoked_at is null`.execute(db);
  return rows.map((r) => r.origin);
}

/**
 * Revokes a source: its write key stops being accepted (within the API's cache time, 5 s). Its
 * data stays, attributed to it. Returns false when no active source has that id.
 */
export async function revokeSource(db: DbOrTrx, id: string): Promise<boolean> {
  const result = await db
    .updateTable('app.sources')
    .set({ revoked_at: new Date() })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

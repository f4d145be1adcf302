import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { ApiKeySummary, CreatedApiKey } from '../../schemas/api-keys';
import type { Role } from '../../schemas/roles';
import type { ApiKeyRow, DbOrTrx } from '../db/types';

const KEY_PREFIX = 'cfk_';

/**
 * Keys carry 256 random bits, so a fast hash is enough to store them (a slow password hash protects
 * low-entropy secrets; OWASP ASVS 5.0 V11.4). Only the hash is kept: a lost key is replaced, never
 * recovered.
 */
export function hashApiKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

const iso = (at: Date | null): string | null => (at ? at.toISOString() : null);

function summarize(row: ApiKeyRow): ApiKeySummary {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    prefix: row.key_prefix,
    createdAt: row.created_at.toISOString(),
    expiresAt: iso(row.expires_at),
    revokedAt: iso(row.revoked_at),
    lastUsedAt: iso(row.last_used_at),
  };
}

export async function createApiKey(
  db: DbOrTrx,
  input: { role: Role; name?: string | undefined; expiresAt?: Date | undefined },
): Promise<CreatedApiKey> {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const row = await db
    .insertInto('app.api_keys')
    .values({
      name: input.name ?? `${input.role} key`,
      role: input.role,
      key_hash: hashApiKey(key),
      key_prefix: key.slice(0, 12),
      expires_at: input.expiresAt ?? null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { ...summarize(row), key };
}

/**
 * The usable key matching `key`, or undefined: unknown, revoked and expired keys are alike to the
 * caller (which of them it was is nobody's business but the key's owner, who can list keys).
 */
export async function findActiveApiKey(db: DbOrTrx, key: string): Promise<ApiKeySummary | undefined> {
  if (!key.startsWith(KEY_PREFIX) || key.length > 200) return undefined;
  const row = await db
    .selectFrom('app.api_keys')
    .selectAll()
    .where('key_hash', '=', hashApiKey(key))
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .executeTakeFirst();
  return row ? summarize(row) : undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The usable key with this id, or undefined (unknown, revoked, expired): for a browser session,
 * which names its key by id and must stop working the moment the key is revoked or expires.
 */
export async function findActiveApiKeyById(db: DbOrTrx, id: string): Promise<ApiKeySummary | undefined> {
  if (!UUID.test(id)) return undefined;
  const row = await db
    .selectFrom('app.api_keys')
    .selectAll()
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .executeTakeFirst();
  return row ? summarize(row) : undefined;
}

export async function listApiKeys(db: DbOrTrx): Promise<ApiKeySummary[]> {
  const rows = await db.selectFrom('app.api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
  return rows.map(summarize);
}

/**
 * Revokes a key at once (every process checks keys against the database on each request). Revoking
 * a revoked key changes nothing and says so; undefined: no key has that id.
 */
export async function revokeApiKey(db: DbOrTrx, id: string): Promise<{ key: ApiKeySummary; alreadyRevoked: boolean } | undefined> {
  const revoked = await db.updateTable('app.api_keys').set({ revoked_at: sql<Date>`now()` }).where('id', '=', id).where('revoked_at', 'is', null).returningAll().executeTakeFirst();
  if (revoked) return { key: summarize(revoked), alreadyRevoked: false };
  const existing = await db.selectFrom('app.api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  return existing ? { key: summarize(existing), alreadyRevoked: true } : undefined;
}

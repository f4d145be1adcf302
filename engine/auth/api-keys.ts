import { createHash, randomBytes } from 'node:crypto';
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

function summarize(row: ApiKeyRow): ApiKeySummary {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    prefix: row.key_prefix,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at ? row.revoked_at.toISOString() : null,
  };
}

export async function createApiKey(db: DbOrTrx, input: { role: Role; name?: string | undefined }): Promise<CreatedApiKey> {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const row = await db
    .insertInto('app.api_keys')
    .values({ name: input.name ?? `${input.role} key`, role: input.role, key_hash: hashApiKey(key), key_prefix: key.slice(0, 12) })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { ...summarize(row), key };
}

/** The active key matching `key`, or undefined: unknown and revoked keys are alike to the caller. */
export async function findActiveApiKey(db: DbOrTrx, key: string): Promise<ApiKeySummary | undefined> {
  if (!key.startsWith(KEY_PREFIX) || key.length > 200) return undefined;
  const row = await db
    .selectFrom('app.api_keys')
    .selectAll()
    .where('key_hash', '=', hashApiKey(key))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? summarize(row) : undefined;
}

export async function listApiKeys(db: DbOrTrx): Promise<ApiKeySummary[]> {
  const rows = await db.selectFrom('app.api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
  return rows.map(summarize);
}

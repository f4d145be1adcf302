import { sql } from 'kysely';
import type { Keys } from '../config';
import type { Databases } from '../db/connect';
import type { IdentityKind, TraitValue } from '../db/types';
import { lockSubjectKeys, readFields } from '../vault/fields';
import { normalizeEmail, normalizeId } from '../vault/normalize';
import { identityKey } from './keys';

export interface SubjectReport {
  readonly profileId: string;
  readonly identifiers: ReadonlyArray<{ kind: IdentityKind; sourceId: string; createdAt: string }>;
  /** Decrypted PII, with where and when each field was acquired. */
  readonly fields: ReadonlyArray<{ field: string; value: string; sourceId: string; acquiredAt: string }>;
  readonly traits: Readonly<Record<string, TraitValue>>;
  readonly createdAt: string | null;
  readonly lastSeenAt: string | null;
  readonly events: ReadonlyArray<{ type: string; count: number }>;
}

export type SubjectIdentifier = { email: string } | { userId: string } | { anonymousId: string };

function keyFor(keys: Keys, id: SubjectIdentifier) {
  if ('email' in id) {
    const email = normalizeEmail(id.email);
    return email ? identityKey(keys.pseudonym, 'email', email) : undefined;
  }
  const [kind, raw] = 'userId' in id ? (['user', id.userId] as const) : (['anonymous', id.anonymousId] as const);
  const value = normalizeId(raw);
  return value ? identityKey(keys.pseudonym, kind, value) : undefined;
}

/**
 * Everything stored about one person, decrypted: what a privacy officer shows a person who asks
 * (GDPR Art. 15). Undefined when nobody with that identifier is known.
 */
export async function describeSubject(databases: Databases, keys: Keys, id: SubjectIdentifier): Promise<SubjectReport | undefined> {
  const key = keyFor(keys, id);
  if (!key) return undefined;
  const identity = await databases.vaultDb
    .selectFrom('vault.identities')
    .select('profile_id')
    .where('kind', '=', key.kind)
    .where('hash', '=', key.hash)
    .executeTakeFirst();
  if (!identity) return undefined;
  const profileId = identity.profile_id;
  const fields = await databases.vaultDb.transaction().execute(async (trx) => {
    const subjectKey = (await lockSubjectKeys(trx, keys.master, [profileId])).get(profileId);
    return subjectKey ? readFields(trx, subjectKey) : [];
  });
  const identifiers = await databases.vaultDb
    .selectFrom('vault.identities')
    .select(['kind', 'source_id', 'created_at'])
    .where('profile_id', '=', profileId)
    .orderBy('created_at')
    .execute();
  const profile = await databases.db.selectFrom('app.profiles').selectAll().where('id', '=', profileId).executeTakeFirst();
  const events = await sql<{ type: string; count: string }>`
    select type, count(*)::text as count from app.events where profile_id = ${profileId} group by type order by type`.execute(databases.db);
  return {
    profileId,
    identifiers: identifiers.map((i) => ({ kind: i.kind, sourceId: i.source_id, createdAt: i.created_at.toISOString() })),
    fields: fields.map((f) => ({ field: f.field, value: f.value, sourceId: f.sourceId, acquiredAt: f.acquiredAt.toISOString() })),
    traits: profile?.traits ?? {},
    createdAt: profile?.created_at.toISOString() ?? null,
    lastSeenAt: profile?.last_seen_at.toISOString() ?? null,
    events: events.rows.map((r) => ({ type: r.type, count: Number(r.count) })),
  };
}

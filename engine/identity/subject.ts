import { sql } from 'kysely';
import type { Keys } from '../config';
import type { Databases } from '../db/connect';
import type { IdentityKind, TraitValue } from '../db/types';
import { lockSubjectKeys, readFields } from '../vault/fields';
import { findProfileId, type SubjectIdentifier } from './lookup';

export type { SubjectIdentifier } from './lookup';

export interface SubjectReport {
  readonly profileId: string;
  readonly identifiers: ReadonlyArray<{ kind: IdentityKind; sourceId: string; createdAt: string }>;
  /** Decrypted PII, with where and when each field was acquired. */
  readonly fields: ReadonlyArray<{ field: string; value: string; sourceId: string; acquiredAt: string }>;
  readonly traits: Readonly<Record<string, TraitValue>>;
  readonly createdAt: string | null;
  readonly lastSeenAt: string | null;
  readonly events: ReadonlyArray<{ type: string; count: number }>;
  /** Current consent per purpose (the latest ledger row), with how and when it was given or refused. */
  readonly consent: ReadonlyArray<{ purpose: string; decision: string; method: string; at: string }>;
}

/**
 * Everything stored about one person, decrypted: what a privacy officer shows a person who asks
 * (GDPR Art. 15). Undefined when nobody with that identifier is known.
 */
export async function describeSubject(databases: Databases, keys: Keys, id: SubjectIdentifier): Promise<SubjectReport | undefined> {
  const profileId = await findProfileId(databases.vaultDb, keys, [id]);
  if (!profileId) return undefined;
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
  const consent = await databases.db
    .selectFrom('app.consent_current')
    .select(['purpose', 'decision', 'method', 'occurred_at'])
    .where('profile_id', '=', profileId)
    .orderBy('purpose')
    .execute();
  return {
    profileId,
    identifiers: identifiers.map((i) => ({ kind: i.kind, sourceId: i.source_id, createdAt: i.created_at.toISOString() })),
    fields: fields.map((f) => ({ field: f.field, value: f.value, sourceId: f.sourceId, acquiredAt: f.acquiredAt.toISOString() })),
    traits: profile?.traits ?? {},
    createdAt: profile?.created_at.toISOString() ?? null,
    lastSeenAt: profile?.last_seen_at.toISOString() ?? null,
    events: events.rows.map((r) => ({ type: r.type, count: Number(r.count) })),
    consent: consent.map((c) => ({ purpose: c.purpose, decision: c.decision, method: c.method, at: c.occurred_at.toISOString() })),
  };
}

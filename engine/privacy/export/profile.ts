import type { ExportedProfile, ExportedTrait } from '../../../schemas/subject-export';
import type { DbOrTrx, TraitValue } from '../../db/types';
import type { ExportProfiles } from './subject-ids';

const iso = (d: Date | null | undefined) => d?.toISOString() ?? null;

/** Traits as stored ({name: {v, src, at}}), each with its source and time (invariant 3). */
function traitList(traits: Readonly<Record<string, TraitValue>> | undefined): ExportedTrait[] {
  return Object.entries(traits ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, t]) => ({ name, value: t.v, sourceId: String(t.src), acquiredAt: String(t.at) }));
}

/** The pseudonymous profile, and those merging into it; by primary key. */
export async function readProfile(db: DbOrTrx, profiles: ExportProfiles): Promise<ExportedProfile> {
  const rows = await db
    .selectFrom('app.profiles')
    .select(['id', 'source_id', 'created_at', 'last_seen_at', 'traits'])
    .where('id', 'in', [profiles.profileId, ...profiles.pendingMerges])
    .execute();
  const section = (id: string) => {
    const row = rows.find((r) => r.id === id);
    // A profile the vault knows but schema `app` lacks (its first batch never committed) has no row.
    return { id, sourceId: row?.source_id ?? null, createdAt: iso(row?.created_at), lastSeenAt: iso(row?.last_seen_at), traits: traitList(row?.traits) };
  };
  return { ...section(profiles.profileId), pendingMerges: profiles.pendingMerges.map(section) };
}

import type { SubjectExportRequest } from '../../../schemas/subject-export';
import type { Keys } from '../../config';
import type { VaultDbOrTrx } from '../../db/types';
import { findProfileId, type SubjectIdentifier, subjectIdentifierOf } from '../../identity/lookup';

export interface ExportProfiles {
  /** The profile the identifier leads to: where a merge moves everything of the person. */
  readonly profileId: string;
  /**
   * Profiles merged into it whose rows in schema `app` have not moved yet (the vault committed the
   * merge, the app side has not applied it). An applied merge moved every row, so the winner's id
   * is enough for those.
   */
  readonly pendingMerges: readonly string[];
}

/** The one identifier a request names (the schema lets through exactly one). */
export function exportIdentifier(request: SubjectExportRequest): SubjectIdentifier {
  return subjectIdentifierOf(request) as SubjectIdentifier;
}

/** A chain of merges longer than this is not something the engine makes; stop rather than loop. */
const MAX_MERGE_DEPTH = 16;

/**
 * Whose rows an export reads. Pending merges are few (a partial index holds only them), so the
 * look-up costs the same however many merges were ever applied.
 */
export async function exportProfiles(vault: VaultDbOrTrx, keys: Keys, id: SubjectIdentifier): Promise<ExportProfiles | undefined> {
  const profileId = await findProfileId(vault, keys, [id]);
  if (!profileId) return undefined;
  const seen = new Set([profileId]);
  let frontier = [profileId];
  for (let depth = 0; depth < MAX_MERGE_DEPTH && frontier.length > 0; depth++) {
    const rows = await vault
      .selectFrom('vault.profile_merges')
      .select('loser_id')
      .where('applied_at', 'is', null)
      .where('winner_id', 'in', frontier)
      .execute();
    frontier = rows.map((r) => r.loser_id).filter((loser) => !seen.has(loser));
    for (const loser of frontier) seen.add(loser);
  }
  return { profileId, pendingMerges: [...seen].filter((p) => p !== profileId) };
}

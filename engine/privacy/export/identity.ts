import type { Kysely } from 'kysely';
import type { ExportedField, SubjectExportHead } from '../../../schemas/subject-export';
import type { VaultDatabase } from '../../db/types';
import { lockSubjectKeys, readFields } from '../../vault/fields';

/**
 * The vault's part: the person's fields, decrypted under their data key (locked as merges and
 * erasure lock it, so neither runs half-way through the read), and the kinds of identifier they
 * are known by. The blind-index hashes stay in the vault: they mean nothing to the person and
 * would only help someone holding the pseudonym key.
 */
export async function readIdentity(vault: Kysely<VaultDatabase>, masterKey: Buffer, profileId: string): Promise<SubjectExportHead['identity']> {
  const fields = await vault.transaction().execute(async (trx) => {
    const key = (await lockSubjectKeys(trx, masterKey, [profileId])).get(profileId);
    return key ? readFields(trx, key) : [];
  });
  const identifiers = await vault
    .selectFrom('vault.identities')
    .select(['kind', 'source_id', 'created_at'])
    .where('profile_id', '=', profileId)
    .orderBy('created_at')
    .orderBy('kind')
    .execute();
  return {
    fields: fields.map((f): ExportedField => ({ field: f.field, value: f.value, sourceId: f.sourceId, acquiredAt: f.acquiredAt.toISOString() })),
    identifiers: identifiers.map((i) => ({ kind: i.kind, sourceId: i.source_id, createdAt: i.created_at.toISOString() })),
  };
}

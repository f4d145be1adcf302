import type { Kysely } from 'kysely';
import type { Database } from '../../db/types';

/**
 * Step 6: the keyed hash of each erased address on the suppression list, so that a later import or
 * sign-up does not mail the person again against their objection (ERASURE_SUPPRESS, on by default;
 * GDPR Art. 21(3), 6(1)(f), 17(3)(b): the reasoning is in docs/erasure.md). Off, any such hash is
 * taken off the list instead.
 */
export async function applyErasureSuppression(db: Kysely<Database>, suppress: boolean, emailHashes: readonly Buffer[]): Promise<void> {
  if (emailHashes.length === 0) return;
  if (suppress) {
    await db
      .insertInto('app.suppressions')
      .values(emailHashes.map((hash) => ({ hash, reason: 'erased' as const, detail: null })))
      .onConflict((oc) => oc.column('hash').doNothing())
      .execute();
  } else {
    await db.deleteFrom('app.suppressions').where('hash', 'in', [...emailHashes]).execute();
  }
}

import { sql } from 'kysely';
import type { DbOrTrx } from '../db/types';
import { type AutomationDeps, type AutomationInput, type AutomationOutcome, type RunOptions, runAutomation } from './run-automation';

export type IsolatedOutcome = { readonly ok: true; readonly outcome: AutomationOutcome } | { readonly ok: false; readonly error: string };

/**
 * The rules run in a savepoint of the caller's transaction: if they fail (a bug, a rule PostgreSQL
 * refuses), what the caller came to do still commits (the batch's events, a withdrawal: invariant 6,
 * GDPR Art. 7(3)) and the people concerned are marked for the tick to try again.
 */
export async function runAutomationIsolated(
  trx: DbOrTrx,
  deps: AutomationDeps,
  inputs: readonly AutomationInput[],
  now: Date,
  options: RunOptions = {},
): Promise<IsolatedOutcome> {
  await sql`savepoint automation`.execute(trx);
  try {
    const outcome = await runAutomation(trx, deps, inputs, now, options);
    await sql`release savepoint automation`.execute(trx);
    return { ok: true, outcome };
  } catch (err) {
    await sql`rollback to savepoint automation`.execute(trx);
    const ids = [...new Set(inputs.map((i) => i.profileId))];
    if (ids.length > 0) {
      await sql`update app.segment_state set recheck_at = ${now} where profile_id = any(${ids}::uuid[])`.execute(trx);
    }
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

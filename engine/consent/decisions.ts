import type { DbOrTrx } from '../db/types';
import { decide, type GateDecision, type Need } from './gate';
import { consentOf } from './ledger';
import type { PurposeCatalog } from './purposes';

export interface ConsentCheck {
  readonly profileId: string;
  /** What the engine is about to do, e.g. `campaign:welcome:send` (recorded with the decision). */
  readonly action: string;
  readonly need: Need;
  /** What the decision is about (campaign, step, send id…), kept with it; never PII. */
  readonly ref?: Readonly<Record<string, string | number>>;
}

/**
 * Asks the gate at the moment of action, against the consent committed now, and records the
 * decision with its reason (DESIGN.md invariant 2), so "why did / didn't this person get this
 * email" can be answered later. Pass the caller's transaction to decide and act atomically.
 */
export async function checkConsent(db: DbOrTrx, catalog: PurposeCatalog, check: ConsentCheck): Promise<GateDecision> {
  const decision = decide(catalog, await consentOf(db, check.profileId), check.need);
  await db
    .insertInto('app.decisions')
    .values({
      profile_id: check.profileId,
      action: check.action,
      allowed: decision.allowed,
      reason: decision.reason,
      purposes: [...decision.purposes],
      missing: decision.missing.map((m) => `${m.purpose}:${m.reason}`),
      ref: JSON.stringify(check.ref ?? {}),
    })
    .execute();
  return decision;
}

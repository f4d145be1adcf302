import type { DbOrTrx } from '../db/types';
import { decide, type GateDecision, type Need } from './gate';
import { consentOf } from './ledger';
import type { PurposeCatalog } from './purposes';

/** One decision as app.decisions keeps it: what was (not) done for whom, and why. */
export interface Decision {
  readonly profileId: string;
  readonly action: string;
  readonly allowed: boolean;
  readonly reason: string;
  readonly purposes: readonly string[];
  readonly missing?: readonly string[];
  /** What it is about (campaign, step, send id…); never PII. */
  readonly ref?: Readonly<Record<string, unknown>>;
  /** For a rule's decision: the campaign, the hash of its file, and the outcome. */
  readonly ruleId?: string;
  readonly ruleVersion?: string | null;
  readonly outcome?: string;
}

// Ten columns a row: PostgreSQL takes at most 65,535 parameters a statement.
const DECISION_CHUNK = 1_000;

export async function recordDecisions(db: DbOrTrx, decisions: readonly Decision[]): Promise<void> {
  for (let i = 0; i < decisions.length; i += DECISION_CHUNK) {
    await db
      .insertInto('app.decisions')
      .values(
        decisions.slice(i, i + DECISION_CHUNK).map((d) => ({
          profile_id: d.profileId,
          action: d.action,
          allowed: d.allowed,
          reason: d.reason,
          purposes: [...d.purposes],
          missing: [...(d.missing ?? [])],
          ref: JSON.stringify(d.ref ?? {}),
          rule_id: d.ruleId ?? null,
          rule_version: d.ruleVersion ?? null,
          outcome: d.outcome ?? null,
        })),
      )
      .execute();
  }
}

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
  await recordDecisions(db, [
    {
      profileId: check.profileId,
      action: check.action,
      allowed: decision.allowed,
      reason: decision.reason,
      purposes: decision.purposes,
      missing: decision.missing.map((m) => `${m.purpose}:${m.reason}`),
      ref: check.ref ?? {},
    },
  ]);
  return decision;
}

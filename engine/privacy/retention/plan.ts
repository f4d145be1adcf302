import type { DbOrTrx } from '../../db/types';
import { type Cutoffs, cutoffsAt } from './cutoffs';
import { listEventPartitions, partitionsBefore } from './event-partitions';
import type { RetentionPolicy } from './policy';
import { countExpiredConfirmations, countExpiredDecisions, countExpiredSegmentStates, countInactiveProfiles } from './statements';

/**
 * What retention would remove now, from the database's state and the policy alone (a dry run:
 * `consentflow retention plan`). Counts only: never a profile id or anything about a person.
 */

export interface RetentionPlan {
  readonly at: string;
  readonly events: {
    readonly rule: string;
    readonly cutoff: string;
    readonly partitions: ReadonlyArray<{ name: string; from: string; to: string; rows: number; estimated: boolean }>;
    readonly rows: number;
  };
  readonly decisions: {
    readonly rule: string;
    readonly rows: number;
    readonly byRetention: ReadonlyArray<{ retention: string; purposes: readonly string[]; before: string; rows: number }>;
  };
  readonly confirmations: { readonly rule: string; readonly rows: number };
  readonly segmentStates: { readonly rule: string; readonly rows: number };
  readonly inactiveProfiles: {
    readonly rule: string;
    readonly profiles: number;
    /** How many one run puts up for erasure (RETENTION_BATCH_SIZE); the rest at the next runs. */
    readonly thisRun: number;
  };
  /** What retention keeps on purpose, and why. */
  readonly kept: ReadonlyArray<{ readonly data: string; readonly rule: string }>;
}

export const KEPT: RetentionPlan['kept'] = [
  {
    data: 'consent ledger',
    rule: 'the proof of consent (GDPR Art. 7(1)): kept while the profile exists; it goes only with the profile, by erasure (on request or as an inactive profile)',
  },
  { data: 'confirmed double opt-in requests', rule: 'part of the proof of a double opt-in consent: kept with the ledger' },
  {
    data: 'journeys and sends',
    rule: 'they enforce "once per person", re-entry periods and frequency caps: kept while the profile exists, and go with it',
  },
  { data: 'erasure receipts, suppression hashes', rule: 'hold no personal data (DESIGN.md invariant 4): kept' },
  { data: 'anonymous event counts', rule: 'per day, source, type and name, about nobody: kept' },
];

export async function planRetention(db: DbOrTrx, policy: RetentionPolicy, now = new Date()): Promise<RetentionPlan> {
  return planAt(db, policy, cutoffsAt(policy, now));
}

export async function planAt(db: DbOrTrx, policy: RetentionPolicy, c: Cutoffs): Promise<RetentionPlan> {
  const partitions = partitionsBefore(await listEventPartitions(db), c.events.cutoff, c.now);
  const decisions = await countExpiredDecisions(db, c);
  const profiles = await countInactiveProfiles(db, c);
  return {
    at: c.now.toISOString(),
    events: {
      rule: c.events.rule,
      cutoff: c.events.cutoff.toISOString(),
      partitions: partitions.map((p) => ({ name: p.name, from: p.from.toISOString(), to: p.to.toISOString(), rows: p.rows, estimated: p.estimated })),
      rows: partitions.reduce((n, p) => n + p.rows, 0),
    },
    decisions: {
      rule: c.decisions.rule,
      rows: decisions.reduce((n, g) => n + g.rows, 0),
      byRetention: decisions.map((g) => {
        const purposes = c.decisions.purposes.filter((p) => p.cutoff.getTime() === g.cutoff.getTime());
        return { retention: purposes[0]?.retention ?? c.decisions.fallback.retention, purposes: purposes.map((p) => p.name), before: g.cutoff.toISOString(), rows: g.rows };
      }),
    },
    confirmations: { rule: c.confirmations.rule, rows: await countExpiredConfirmations(db, c) },
    segmentStates: { rule: c.segmentStates.rule, rows: await countExpiredSegmentStates(db, c) },
    inactiveProfiles: { rule: c.profiles.rule, profiles, thisRun: Math.min(profiles, policy.batchSize) },
    kept: KEPT,
  };
}

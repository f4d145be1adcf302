import type { Capability } from '../../schemas/purposes-file';
import type { ConsentDecisionKind, ConsentMethod } from '../db/types';
import type { PurposeCatalog, PurposeDefinition } from './purposes';

/**
 * The one answer to "may we do X for this person now, and why". Pure: the caller loads the
 * person's current consent (ledger.ts) and records the decision (decisions.ts).
 *
 * - A purpose based on consent (GDPR Art. 6(1)(a)) is allowed only while its latest ledger row is a
 *   grant: never asked means no.
 * - A purpose based on legitimate interest (Art. 6(1)(f)) is allowed until the person objects or
 *   withdraws; an objection to direct marketing and the profiling behind it is absolute
 *   (Art. 21(2), 21(3)).
 */

export interface PurposeState {
  readonly decision: ConsentDecisionKind;
  readonly occurredAt: Date;
  readonly method: ConsentMethod;
}

/** A person's current consent: purpose → latest ledger row. */
export type ConsentState = ReadonlyMap<string, PurposeState>;

export type MissingReason = 'never_granted' | 'withdrawn' | 'objected' | 'unknown_purpose' | 'no_purpose_allows';

export interface Missing {
  readonly purpose: string;
  readonly reason: MissingReason;
}

export type Need =
  /** Every one of these purposes (a campaign's declared purposes). */
  | { readonly purposes: readonly string[] }
  /** Any purpose that allows this (the engine's own processing, e.g. linking events to a profile). */
  | { readonly capability: Capability };

export interface GateDecision {
  readonly allowed: boolean;
  /** The purposes the decision rested on. */
  readonly purposes: readonly string[];
  readonly missing: readonly Missing[];
  /** One line a person can read: "allowed: email_marketing granted by double_opt_in on 2026-…". */
  readonly reason: string;
}

function purposeMissing(definition: PurposeDefinition, state: PurposeState | undefined): Missing | undefined {
  if (state?.decision === 'objected') return { purpose: definition.name, reason: 'objected' };
  if (state?.decision === 'withdrawn') return { purpose: definition.name, reason: 'withdrawn' };
  if (definition.legalBasis === 'consent' && state?.decision !== 'granted') return { purpose: definition.name, reason: 'never_granted' };
  return undefined;
}

function describeMissing(m: Missing, state: ConsentState): string {
  const row = state.get(m.purpose);
  switch (m.reason) {
    case 'never_granted':
      return `${m.purpose} never granted`;
    case 'withdrawn':
    case 'objected':
      return `${m.purpose} ${m.reason} by ${row?.method ?? 'unknown'} on ${row?.occurredAt.toISOString() ?? 'unknown date'}`;
    case 'unknown_purpose':
      return `${m.purpose} is not declared in rules/purposes.yaml`;
    case 'no_purpose_allows':
      return `no purpose in rules/purposes.yaml allows ${m.purpose}`;
  }
}

function describeAllowed(definition: PurposeDefinition, state: ConsentState): string {
  const row = state.get(definition.name);
  if (row?.decision === 'granted') return `${definition.name} granted by ${row.method} on ${row.occurredAt.toISOString()}`;
  return `${definition.name} on legitimate interest, not objected to`;
}

export function decide(catalog: PurposeCatalog, state: ConsentState, need: Need): GateDecision {
  if ('capability' in need) {
    const candidates = catalog.providing(need.capability);
    if (candidates.length === 0) {
      const missing = [{ purpose: need.capability, reason: 'no_purpose_allows' as const }];
      return { allowed: false, purposes: [], missing, reason: `refused: ${describeMissing(missing[0] as Missing, state)}` };
    }
    const allowedBy = candidates.find((p) => purposeMissing(p, state.get(p.name)) === undefined);
    if (allowedBy) return { allowed: true, purposes: [allowedBy.name], missing: [], reason: `allowed: ${describeAllowed(allowedBy, state)}` };
    const missing = candidates.map((p) => purposeMissing(p, state.get(p.name)) as Missing);
    return {
      allowed: false,
      purposes: candidates.map((p) => p.name),
      missing,
      reason: `refused: ${missing.map((m) => describeMissing(m, state)).join('; ')}`,
    };
  }
  const missing: Missing[] = [];
  const allowedBy: PurposeDefinition[] = [];
  for (const name of need.purposes) {
    const definition = catalog.get(name);
    if (!definition) {
      missing.push({ purpose: name, reason: 'unknown_purpose' });
      continue;
    }
    const m = purposeMissing(definition, state.get(name));
    if (m) missing.push(m);
    else allowedBy.push(definition);
  }
  if (need.purposes.length === 0) return { allowed: true, purposes: [], missing: [], reason: 'allowed: no purpose needed' };
  if (missing.length > 0) {
    return { allowed: false, purposes: [...need.purposes], missing, reason: `refused: ${missing.map((m) => describeMissing(m, state)).join('; ')}` };
  }
  return { allowed: true, purposes: [...need.purposes], missing: [], reason: `allowed: ${allowedBy.map((d) => describeAllowed(d, state)).join('; ')}` };
}

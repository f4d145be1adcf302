import { decide, type ConsentState } from './gate';
import type { PurposeCatalog } from './purposes';

export interface PurposeSummary {
  readonly allowed: boolean;
  /** The latest ledger decision, or `not_asked`. */
  readonly state: 'granted' | 'withdrawn' | 'objected' | 'not_asked';
  readonly since: string | null;
  readonly legalBasis: 'consent' | 'legitimate_interest';
  /** A double opt-in is waiting for the person's click. */
  readonly pendingConfirmation: boolean;
}

/** A person's consent per declared purpose, as the consent API answers it and the preference page shows it. */
export function consentSummary(catalog: PurposeCatalog, state: ConsentState, pending: readonly string[]): Record<string, PurposeSummary> {
  return Object.fromEntries(
    catalog.all().map((purpose) => {
      const row = state.get(purpose.name);
      return [
        purpose.name,
        {
          allowed: decide(catalog, state, { purposes: [purpose.name] }).allowed,
          state: row?.decision ?? 'not_asked',
          since: row?.occurredAt.toISOString() ?? null,
          legalBasis: purpose.legalBasis,
          pendingConfirmation: pending.includes(purpose.name),
        },
      ];
    }),
  );
}

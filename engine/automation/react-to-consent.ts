import type { DbOrTrx } from '../db/types';
import { type AutomationDeps, runAutomation } from './run-automation';

/**
 * After a consent change made outside an event batch (a confirmation click, the preference page,
 * a privacy officer), in the same transaction: segments are re-evaluated (a new subscriber enters
 * `newsletter_subscribers`, and the welcome series can start) and journeys whose consent is gone
 * exit, cancelling what they scheduled (DESIGN.md invariant 2).
 */
export async function reactToConsent(trx: DbOrTrx, deps: AutomationDeps, profileId: string): Promise<void> {
  await runAutomation(trx, deps, [{ profileId, events: [] }], new Date());
}

import type { DbOrTrx } from '../db/types';
import { type IsolatedOutcome, runAutomationIsolated } from './isolated';
import type { AutomationDeps } from './run-automation';

/**
 * After a consent change made outside an event batch (a confirmation click, the preference page,
 * a privacy officer), in the same transaction: segments are re-evaluated (a new subscriber enters
 * `newsletter_subscribers`, and the welcome series can start) and journeys whose consent is gone
 * exit, cancelling what they scheduled (DESIGN.md invariant 2). The person's profile row is locked
 * first, so a batch in flight for them finishes before, and its journeys are seen and ended. A
 * failure here never undoes the consent change itself.
 */
export async function reactToConsent(trx: DbOrTrx, deps: AutomationDeps, profileId: string): Promise<IsolatedOutcome> {
  return runAutomationIsolated(trx, deps, [{ profileId, events: [] }], new Date());
}

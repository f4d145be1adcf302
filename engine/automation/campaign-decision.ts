import type { Decision } from '../consent/decisions';
import type { CompiledCampaign } from '../rules/compile';

// The action a decision is about, where the outcome names a result of it.
const ACTION_OF: Readonly<Record<string, string>> = { enrol: 'enrol', skip: 'enrol', send_skipped: 'send' };

/**
 * A rule's decision about one person: the campaign (id and file hash), the outcome, the reason, and
 * what it was about. `campaign` is undefined when the campaign left the rule set.
 */
export function campaignDecision(
  profileId: string,
  campaignId: string,
  campaign: CompiledCampaign | undefined,
  outcome: string,
  allowed: boolean,
  reason: string,
  ref: Readonly<Record<string, unknown>>,
): Decision {
  return {
    profileId,
    action: `campaign:${campaignId}:${ACTION_OF[outcome] ?? outcome}`,
    allowed,
    reason,
    purposes: campaign ? campaign.file.purposes : [],
    ref,
    ruleId: campaignId,
    ruleVersion: campaign?.version ?? null,
    outcome,
  };
}

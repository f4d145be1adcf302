import { z } from 'zod';
import { RuleId } from './rules/conditions';

/**
 * The campaign report (`GET /admin/v1/campaigns/:id/stats`, `consentflow report campaign ID`):
 * counts only. Nothing in it names, or lets one single out, a person (a marketer's view: GDPR Art.
 * 5(1)(c), 25(2)); skip reasons are grouped into the codes below, never their free text.
 */

export const CampaignReportParams = z.strictObject({ id: RuleId });
export type CampaignReportParams = z.infer<typeof CampaignReportParams>;

/** Why a send was skipped, grouped (engine/reports/campaign-report.ts says which text maps where). */
export const SKIP_REASONS = [
  'no_consent',
  'frequency_cap',
  'journey_ended',
  'suppressed',
  'no_address',
  'no_template',
  'campaign_removed',
  'profile_gone',
  'other',
] as const;
export const SkipReason = z.enum(SKIP_REASONS);
export type SkipReason = z.infer<typeof SkipReason>;

const Count = z.int().nonnegative();

export const CampaignStepReport = z.object({
  /** The step's `id`, or its path (`steps.2.then.0`) when the file gives none. */
  step: z.string(),
  template: z.string().nullable(),
  /** False for a step that has rows but is no longer in the running file (an earlier version). */
  inRuleSet: z.boolean(),
  /** Sends written for this step (whatever became of them). */
  scheduled: Count,
  /** Still waiting for their time (or being sent now). */
  pending: Count,
  sent: Count,
  /** At schedule time (no send written) and at send time, by reason. */
  skipped: Count,
  skippedByReason: z.partialRecord(SkipReason, Count),
  /** Cancelled because the journey ended before the send was due (an exit, a withdrawal). */
  cancelled: Count,
  /** Refused by the relay for good (a 5xx reply). */
  bounced: Count,
  /** Failed for another reason (an address the engine refuses, a message it could not build). */
  failed: Count,
  /** Sent messages opened (at least once), clicked (at least once): only where consent allowed tracking. */
  opened: Count,
  clicked: Count,
  /** Sent messages whose unsubscribe link (or mailto) was used. */
  unsubscribed: Count,
});
export type CampaignStepReport = z.infer<typeof CampaignStepReport>;

export const CampaignReport = z.object({
  campaign: z.object({ id: z.string(), name: z.string().nullable(), version: z.string().nullable(), inRuleSet: z.boolean() }),
  generatedAt: z.iso.datetime(),
  enrolments: z.object({
    /** Journeys started (a person who re-entered counts once per entry). */
    total: Count,
    people: Count,
    active: Count,
    completed: Count,
    exited: Count,
    ended: Count,
  }),
  steps: z.array(CampaignStepReport),
  /** The exit goal's conversions; null when the campaign file has no exit. */
  goal: z
    .object({
      kind: z.enum(['event', 'condition']),
      description: z.string(),
      conversions: Count,
      /** conversions / enrolments.total, 0 without enrolments. */
      rate: z.number().min(0).max(1),
    })
    .nullable(),
});
export type CampaignReport = z.infer<typeof CampaignReport>;

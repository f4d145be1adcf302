import { z } from 'zod';
import { PurposeName } from '../purposes-file';
import { Condition, Duration, EventMatch, RuleId } from './conditions';

/**
 * `rules/campaigns/<id>.yaml`: who enters (a trigger and conditions), what happens to them (steps),
 * what ends it (exit), and how often (limits). A campaign runs for a person only while every purpose
 * it declares is allowed for them, checked at enrolment and again before each send (DESIGN.md
 * invariant 2).
 */

const TimeOfDay = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected a time of day as HH:MM, e.g. "21:00"');
/** An IANA time zone name (`Europe/Warsaw`); checked by Intl, so what the runtime knows is allowed. */
export const TimeZone = z.string().refine(
  (zone) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected an IANA time zone such as "Europe/Warsaw" or "UTC"' },
);

export const Trigger = z.union(
  [
    /** Each matching event (with property filters) may enrol its person. */
    z.strictObject({ event: EventMatch }),
    z.strictObject({ segment_entered: RuleId }),
    z.strictObject({ segment_left: RuleId }),
    /**
     * A broadcast at each cron tick to the members of a segment (sent by the email worker). With
     * `person_timezone`, each member gets it at the cron's wall time in their own zone (trait
     * `timezone`), members without one in `timezone`.
     */
    z.strictObject({
      schedule: z.strictObject({
        cron: z.string().min(1).max(100),
        timezone: TimeZone.default('UTC'),
        person_timezone: z.boolean().default(false),
      }),
      segment: RuleId,
    }),
  ],
  { error: 'expected a trigger: event, segment_entered, segment_left, or schedule with segment' },
);
export type Trigger = z.infer<typeof Trigger>;

/** Optional on every step: a stable name for reports and simulation output. */
const StepId = { id: RuleId.optional() };

export type Step =
  | { id?: string | undefined; send: { template: string } }
  | { id?: string | undefined; wait: string }
  | { id?: string | undefined; wait_until: { event: z.infer<typeof EventMatch>; timeout: string; on_timeout: 'continue' | 'exit' } }
  | { id?: string | undefined; branch: { if: Condition; then: Step[]; else: Step[] } }
  | { id?: string | undefined; set_trait: { name: string; value: string | number | boolean } }
  | { id?: string | undefined; add_to_segment: string }
  | { id?: string | undefined; remove_from_segment: string }
  | { id?: string | undefined; end: true };

export const Step: z.ZodType<Step> = z.lazy(() =>
  z.union(
    [
      z.strictObject({ ...StepId, send: z.strictObject({ template: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a template name: a file templates/<name>.*') }) }),
      z.strictObject({ ...StepId, wait: Duration }),
      z.strictObject({
        ...StepId,
        wait_until: z.strictObject({ event: EventMatch, timeout: Duration, on_timeout: z.enum(['continue', 'exit']).default('continue') }),
      }),
      z.strictObject({
        ...StepId,
        branch: z.strictObject({ if: Condition, then: z.array(Step).default([]), else: z.array(Step).default([]) }),
      }),
      z.strictObject({
        ...StepId,
        set_trait: z.strictObject({
          name: z.string().min(1).max(100),
          value: z.union([z.string().max(500), z.number().finite(), z.boolean()]),
        }),
      }),
      z.strictObject({ ...StepId, add_to_segment: RuleId }),
      z.strictObject({ ...StepId, remove_from_segment: RuleId }),
      /** Ends the journey here (in a branch, typically); steps after it in the same list never run. */
      z.strictObject({ ...StepId, end: z.literal(true, { error: 'expected end: true' }) }),
    ],
    { error: 'expected a step: send, wait, wait_until, branch, set_trait, add_to_segment, remove_from_segment or end' },
  ),
) as z.ZodType<Step>;

export const Limits = z.strictObject({
  /** Enrol a person at most once ever (default), unless reenter_after is set. */
  once_per_person: z.boolean().default(true),
  /** Allow a new entry this long after the previous one started. */
  reenter_after: Duration.optional(),
  /** At most `max` sends of this channel per person per `per`, across all campaigns. */
  frequency_cap: z.strictObject({ channel: z.enum(['email']).default('email'), max: z.int().min(1).max(1000), per: Duration }).optional(),
  /** No sends between `from` and `to` in the person's time zone (trait `timezone`), else `timezone`. */
  quiet_hours: z.strictObject({ from: TimeOfDay, to: TimeOfDay, timezone: TimeZone.default('UTC') }).optional(),
});
export type Limits = z.infer<typeof Limits>;

export const CampaignFile = z.strictObject({
  /** Also the file name: `campaigns/<id>.yaml`. */
  id: RuleId,
  name: z.string().min(1).max(200),
  description: z.string().max(2000).optional(),
  /** The purposes (rules/purposes.yaml) this campaign needs, every one of them. */
  purposes: z.array(PurposeName).min(1, 'expected the purposes this campaign needs, e.g. [email_marketing]'),
  trigger: Trigger,
  /** Checked when the trigger fires: who may enter. */
  conditions: Condition.optional(),
  steps: z.array(Step).min(1, 'expected at least one step'),
  /** Ends a person's journey and cancels what is scheduled for them. */
  exit: z
    .strictObject({ event: EventMatch.optional(), condition: Condition.optional() })
    .refine((e) => e.event !== undefined || e.condition !== undefined, { message: 'expected an exit event or condition' })
    .optional(),
  limits: Limits.default({ once_per_person: true }),
});
export type CampaignFile = z.infer<typeof CampaignFile>;

import { z } from 'zod';
import { EVENT_TYPES } from '../segment';
import { PurposeName } from '../purposes-file';

/**
 * The building blocks shared by segment and campaign files: ids, durations, property filters and
 * conditions. Everything here is data; engine/rules compiles it once into predicates.
 */

/** Segment, campaign and step ids: also the file name (`segments/<id>.yaml`), so kept file-safe. */
export const RuleId = z
  .string({ error: 'expected an id: lower-case letters, digits, _ and -, starting with a letter' })
  .regex(/^[a-z][a-z0-9_-]{0,62}$/, 'expected an id: lower-case letters, digits, _ and -, starting with a letter (at most 63)');

export const DURATION_UNITS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** `30s`, `15m`, `2h`, `14d`, `2w`: a whole number and one unit (no months: they have no fixed length). */
export const Duration = z
  .string({ error: 'expected a duration such as "30m", "2h", "14d" or "2w"' })
  .regex(/^[1-9]\d{0,5}(s|m|h|d|w)$/, 'expected a duration: a whole number from 1 followed by s, m, h, d or w, e.g. "30m", "2h", "14d", "2w"');

export function durationMs(duration: string): number {
  const match = /^(\d+)(s|m|h|d|w)$/.exec(duration);
  if (!match) throw new Error(`not a duration: ${duration}`);
  return Number(match[1]) * DURATION_UNITS[match[2] as keyof typeof DURATION_UNITS];
}

const Scalar = z.union([z.string().max(500), z.number().finite(), z.boolean()], { error: 'expected a string, number or boolean' });
export type Scalar = z.infer<typeof Scalar>;

const COMPARISON_SHAPE = {
  equals: Scalar.optional(),
  not_equals: Scalar.optional(),
  in: z.array(Scalar).min(1).max(500).optional(),
  not_in: z.array(Scalar).min(1).max(500).optional(),
  exists: z.boolean().optional(),
  gt: z.number().finite().optional(),
  gte: z.number().finite().optional(),
  lt: z.number().finite().optional(),
  lte: z.number().finite().optional(),
  contains: z.string().min(1).max(500).optional(),
};
export const COMPARISON_OPERATORS = Object.keys(COMPARISON_SHAPE) as Array<keyof typeof COMPARISON_SHAPE>;
const ONE_OPERATOR = {
  message: `expected exactly one operator: ${COMPARISON_OPERATORS.join(', ')}`,
};
const oneOperator = (c: Record<string, unknown>) => COMPARISON_OPERATORS.filter((op) => c[op] !== undefined).length === 1;

/** One comparison; exactly one operator per value test. */
export const Comparison = z.strictObject(COMPARISON_SHAPE).refine(oneOperator, ONE_OPERATOR);
export type Comparison = z.infer<typeof Comparison>;

/** `{plan: pro}` (equals) or `{total: {gte: 100}}`, on event properties. */
export const PropertyFilter = z.record(z.string().min(1).max(200), z.union([Scalar, Comparison]), {
  error: 'expected property names with a value to equal or a comparison such as {gte: 100}',
});
export type PropertyFilter = z.infer<typeof PropertyFilter>;

export const EventMatch = z.strictObject({
  /** The track event name, or the page/screen name. */
  name: z.string().min(1).max(200).optional(),
  type: z.enum(EVENT_TYPES, { error: `expected one of ${EVENT_TYPES.join(', ')}` }).default('track'),
  where: PropertyFilter.optional(),
});
export type EventMatch = z.infer<typeof EventMatch>;

/** `{trait: plan, equals: pro}`: a non-PII trait of the profile (rules/properties.yaml traits.allow). */
export const TraitCondition = z.strictObject({ trait: z.string().min(1).max(100), ...COMPARISON_SHAPE }).refine(oneOperator, ONE_OPERATOR);

/**
 * A condition on one person. Combinators nest; leaves look at non-PII traits, current consent,
 * segment membership, and behaviour (counts of matching events in a sliding window; last seen).
 */
export type Condition =
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition }
  | ({ trait: string } & Comparison)
  | { consent: string }
  | { in_segment: string }
  | { events: { name?: string | undefined; type: (typeof EVENT_TYPES)[number]; where?: PropertyFilter | undefined; at_least?: number | undefined; at_most?: number | undefined; within: string } }
  | { last_seen: { within?: string | undefined; before?: string | undefined } };

const BehaviourCondition = z.strictObject({
  events: z
    .strictObject({
      name: z.string().min(1).max(200).optional(),
      type: z.enum(EVENT_TYPES, { error: `expected one of ${EVENT_TYPES.join(', ')}` }).default('track'),
      where: PropertyFilter.optional(),
      // Counts look at a person's 1,000 most recent matching events (engine/automation/snapshots.ts).
      at_least: z.int().min(1).max(1_000, 'expected at most 1000').optional(),
      at_most: z.int().min(0).max(999, 'expected at most 999').optional(),
      within: Duration,
    })
    .refine((e) => e.at_least !== undefined || e.at_most !== undefined, { message: 'expected at_least or at_most (or both)' }),
});

const LastSeenCondition = z.strictObject({
  last_seen: z
    .strictObject({ within: Duration.optional(), before: Duration.optional() })
    .refine((l) => (l.within === undefined) !== (l.before === undefined), { message: 'expected exactly one of within or before' }),
});

export const Condition: z.ZodType<Condition> = z.lazy(() =>
  z.union(
    [
      z.strictObject({ all: z.array(Condition).min(1, 'expected at least one condition') }),
      z.strictObject({ any: z.array(Condition).min(1, 'expected at least one condition') }),
      z.strictObject({ not: Condition }),
      TraitCondition,
      z.strictObject({ consent: PurposeName }),
      z.strictObject({ in_segment: RuleId }),
      BehaviourCondition,
      LastSeenCondition,
    ],
    { error: 'expected a condition: all, any, not, trait, consent, in_segment, events or last_seen' },
  ),
) as z.ZodType<Condition>;

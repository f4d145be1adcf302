import { z } from 'zod';
import { Condition, RuleId } from './conditions';

/**
 * `rules/segments/<id>.yaml`: a group of people defined by a condition, kept up to date by the
 * events worker as events arrive and by a recompute as windows slide; or a manual segment that
 * campaign steps add people to and remove them from. Building segments is profiling: a person is a
 * member only while a purpose allowing `build_segments` holds for them (GDPR Art. 21(2)).
 */
export const SegmentFile = z
  .strictObject({
    /** Also the file name: `segments/<id>.yaml`. */
    id: RuleId,
    name: z.string().min(1).max(200),
    description: z.string().max(2000).optional(),
    conditions: Condition.optional(),
    /** No conditions: members are added and removed by campaign steps only. */
    manual: z.boolean().default(false),
  })
  .refine((s) => (s.conditions !== undefined) !== s.manual, {
    message: 'expected either conditions or manual: true (not both)',
    path: ['conditions'],
  });
export type SegmentFile = z.infer<typeof SegmentFile>;

import { z } from 'zod';
import { NoticeRef, PURPOSE_NAME } from './consent';
import { ExternalId } from './external-id';
import { isWellFormed } from './well-formed';

/**
 * `POST /admin/v1/subjects`: a person typed in by hand (a business card, a call), with traits and,
 * where the person gave it, consent with its evidence. Trait names and values, the address rule
 * and the purposes are checked against the rule files by the route (engine/import/person.ts,
 * engine/import/consent-evidence.ts); here only their shape.
 */

const NoControl = (what: string) =>
  z
    .string({ error: `expected ${what}` })
    .regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed')
    .refine(isWellFormed, 'expected well-formed text (a lone UTF-16 surrogate is not a character)');

const TraitValue = z.union([NoControl('text').max(1000, 'expected at most 1000 characters'), z.number().finite(), z.boolean()], {
  error: 'expected a string, a number or true/false',
});

export const AddSubjectRequest = z
  .strictObject({
    email: z.string({ error: 'expected an email address' }).max(254, 'expected at most 254 characters').optional(),
    userId: ExternalId.optional(),
    traits: z.record(z.string().min(1).max(100, 'expected trait names of at most 100 characters'), TraitValue, { error: 'expected an object of traits' }).default({}),
    consent: z
      .strictObject({
        grant: z
          .array(z.string().regex(PURPOSE_NAME, 'expected a purpose name from rules/purposes.yaml'), { error: 'expected a list of purposes' })
          .min(1, 'expected at least one purpose')
          .max(50, 'expected at most 50 purposes'),
        /** The notice the person was shown when they agreed (GDPR Art. 7(1)). */
        notice: NoticeRef,
        /** Where the evidence is kept (a signed form's number, a call recording's id); no personal data. */
        reference: NoControl('where the evidence of consent is kept, e.g. "signed form 2026/118"').min(3, 'expected at least 3 characters').max(200, 'expected at most 200 characters'),
      })
      .optional(),
  })
  .refine((r) => r.email !== undefined || r.userId !== undefined, { message: 'expected email or userId: who this person is', path: ['email'] });
export type AddSubjectRequest = z.infer<typeof AddSubjectRequest>;

export const AddedSubject = z.object({
  /** The person's pseudonymous profile id. */
  id: z.uuid(),
  /** false: the identifiers named a person already known, whose traits (and consent) were updated. */
  created: z.boolean(),
});
export type AddedSubject = z.infer<typeof AddedSubject>;

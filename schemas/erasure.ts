import { z } from 'zod';
import { oneIdentifier, SubjectIdentifierFields } from './subject-identifier';

/** POST /admin/v1/subjects/erase: whom to erase (exactly one identifier) and whether to run the deep scan too. */
export const EraseSubjectRequest = z
  .strictObject({
    ...SubjectIdentifierFields,
    /** Also scan every column and Redis key before the receipt (slow: reads everything). */
    deep: z.boolean().default(false),
  })
  .refine(...oneIdentifier);
export type EraseSubjectRequest = z.infer<typeof EraseSubjectRequest>;

export const ErasureIdParams = z.strictObject({ id: z.uuid({ error: 'expected an erasure request id (a uuid)' }) });

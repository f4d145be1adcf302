import { z } from 'zod';
import { ExternalId } from './external-id';

/** POST /admin/v1/subjects/erase: whom to erase (exactly one identifier) and whether to run the deep scan too. */
export const EraseSubjectRequest = z
  .strictObject({
    email: z.email({ error: 'expected an email address' }).max(254).optional(),
    userId: ExternalId.optional(),
    anonymousId: ExternalId.optional(),
    /** Also scan every column and Redis key before the receipt (slow: reads everything). */
    deep: z.boolean().default(false),
  })
  .refine((r) => [r.email, r.userId, r.anonymousId].filter((v) => v !== undefined).length === 1, {
    message: 'expected exactly one of email, userId, anonymousId',
    path: ['email'],
  });
export type EraseSubjectRequest = z.infer<typeof EraseSubjectRequest>;

export const ErasureIdParams = z.strictObject({ id: z.uuid({ error: 'expected an erasure request id (a uuid)' }) });

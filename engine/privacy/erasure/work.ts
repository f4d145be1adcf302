import { z } from 'zod';

/**
 * What an erasure in progress remembers between its steps, so a crash at any step resumes where it
 * stopped (app.erasure_requests.work). It is the person's pseudonyms and blind indexes, so the last
 * step clears it with the receipt: a completed request holds none of it.
 */

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/);

export const ErasureWork = z.object({
  /** Every profile of the person: the one found, and the anonymous ones merged into it. */
  profileIds: z.array(z.uuid()).default([]),
  /** Every identifier (blind index) the vault held for those profiles, plus the one asked about. */
  identities: z.array(z.object({ kind: z.enum(['email', 'user', 'anonymous', 'phone']), hash: Hex32 })).default([]),
  /** Ids of rows that belonged to the person and name their jobs in Redis (found in step 3). */
  sendIds: z.array(z.uuid()).default([]),
  enrolmentIds: z.array(z.uuid()).default([]),
  confirmationIds: z.array(z.uuid()).default([]),
  /** BullMQ job ids of the person's work, per queue. */
  jobs: z.array(z.object({ queue: z.string(), id: z.string() })).default([]),
  /** How many rows the vault held for the person, counted before step 2 deleted them. */
  vaultCounts: z.record(z.string(), z.number()).default({}),
});
export type ErasureWork = z.infer<typeof ErasureWork>;

/** The identifiers as given (and the address read from the vault), sealed: for webhooks and the deep scan. */
export const SealedSubject = z.object({
  email: z.string().optional(),
  userId: z.string().optional(),
  anonymousId: z.string().optional(),
});
export type SealedSubject = z.infer<typeof SealedSubject>;

export const ERASURE_STEPS = [
  'resolve and tombstone',
  'destroy data key and vault rows',
  'delete pseudonymous data',
  'remove jobs from Redis',
  'inform processors',
  'suppress the address',
  'verify',
  'receipt',
] as const;
export type ErasureStepNumber = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

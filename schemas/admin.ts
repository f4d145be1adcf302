import { z } from 'zod';
import { isWellFormed } from './well-formed';
import { oneIdentifier, SubjectIdentifierFields } from './subject-identifier';

/**
 * Why personal data is being decrypted: required on every admin path that decrypts (GDPR Art.
 * 5(2), 30; DESIGN.md invariant 5). A ticket number or the letter a request came by; no personal
 * data (it is kept in the audit log, scrubbed).
 */
export const DecryptionReason = z
  .string({ error: 'expected the reason for reading this person\'s data (e.g. a ticket number)' })
  .trim()
  .min(3, 'expected the reason for reading this person\'s data, at least 3 characters (e.g. a ticket number)')
  .max(500, 'expected at most 500 characters')
  .regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed')
  .refine(isWellFormed, 'expected well-formed text (a lone UTF-16 surrogate is not a character)');

/** `POST /admin/v1/subjects/lookup`: a POST, so the identifier is never in a URL (ASVS 5.0 V14.2.1). */
export const SubjectLookupRequest = z
  .strictObject({
    ...SubjectIdentifierFields,
    reason: DecryptionReason,
  })
  .refine(...oneIdentifier);

export const WhoAmI = z.object({ id: z.uuid(), name: z.string(), role: z.string() });

const AuditOutcome = z.enum(['ok', 'denied', 'not_found', 'invalid', 'failed'], { error: 'expected one of ok, denied, not_found, invalid, failed' });

/** `GET /admin/v1/audit` filters; newest first, keyset-paged by `before`. */
export const AuditQuery = z.strictObject({
  since: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time, e.g. 2026-11-01T00:00:00Z' }).optional(),
  until: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 time, e.g. 2026-11-30T00:00:00Z' }).optional(),
  actor: z.string().max(200).optional(),
  action: z.string().regex(/^[a-z][a-z0-9_.]{0,99}$/, 'expected an action name such as subject.export').optional(),
  outcome: AuditOutcome.optional(),
  /** A live profile id: turned into the keyed pseudonym its entries carry. */
  profileId: z.uuid({ error: 'expected a profile id (a uuid)' }).optional(),
  target: z.string().max(200).optional(),
  before: z.string().regex(/^[1-9][0-9]{0,17}$/, 'expected an entry number (seq) from a previous page').optional(),
  limit: z.coerce.number({ error: 'expected a number from 1 to 500' }).int().min(1, 'expected a number from 1 to 500').max(500, 'expected a number from 1 to 500').default(100),
});
export type AuditQuery = z.infer<typeof AuditQuery>;

export const AuditEntry = z.object({
  seq: z.string(),
  at: z.iso.datetime(),
  actor: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  outcome: AuditOutcome,
  reason: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
  hash: z.string(),
});

export const AuditPage = z.object({ entries: z.array(AuditEntry), next: z.string().nullable() });

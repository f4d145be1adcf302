import { z } from 'zod';
import { ExternalId } from './external-id';
import { oneIdentifier, SubjectIdentifierFields } from './subject-identifier';

/**
 * Consent as it crosses the API: the body of `POST /v1/consent`, and the change an accepted event
 * carries to the events worker. Purpose names are checked against `rules/purposes.yaml` by the API
 * (engine/consent/requests.ts); here only their shape.
 */

export const PURPOSE_NAME = /^[a-z][a-z0-9_]{0,62}$/;
const PurposeName = z.string().regex(PURPOSE_NAME, 'expected a purpose name from rules/purposes.yaml (lower-case letters, digits and _)');
const PurposeList = z.array(PurposeName).max(50, 'expected at most 50 purposes');

export const CONSENT_METHODS = ['form', 'banner', 'double_opt_in', 'api', 'email_link', 'preference_page', 'browser_signal', 'tcf', 'admin', 'import'] as const;
export const CONSENT_SOURCE_KINDS = ['write_key', 'form', 'url', 'email_link', 'preference_page', 'admin', 'import', 'browser_signal'] as const;

export const NoticeRef = z.strictObject({
  id: z.string({ error: 'expected the notice id from rules/purposes.yaml' }).min(1).max(100),
  version: z.number({ error: 'expected the notice version (an integer)' }).int('expected an integer').min(1),
});
export type NoticeRef = z.infer<typeof NoticeRef>;

/** A change of consent as the events worker writes it to the ledger. */
export const ConsentChange = z.object({
  grant: PurposeList,
  withdraw: PurposeList,
  /** The notice shown, with the SHA-256 of its text (hex), so the ledger proves what was read. */
  notice: z.object({ id: z.string().max(100), version: z.number().int().min(1), hash: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  method: z.enum(CONSENT_METHODS),
  sourceKind: z.enum(CONSENT_SOURCE_KINDS),
  /** A form id or the page URL (scrubbed), where the person acted. */
  sourceRef: z.string().max(500).optional(),
});
export type ConsentChange = z.infer<typeof ConsentChange>;


/** The methods a website may claim; the others are the engine's own (links, signals, admin, import). */
export const API_CONSENT_METHODS = ['form', 'banner', 'double_opt_in', 'api'] as const;

export const ConsentRequest = z
  .strictObject({
    writeKey: z.string().max(200).optional(),
    messageId: z.string().min(1).max(200, 'expected at most 200 characters').optional(),
    anonymousId: ExternalId.optional(),
    userId: ExternalId.optional(),
    email: z.email({ error: 'expected an email address' }).max(254).optional(),
    grant: PurposeList.default([]),
    withdraw: PurposeList.default([]),
    notice: NoticeRef.optional(),
    method: z.enum(API_CONSENT_METHODS, { error: `expected one of ${API_CONSENT_METHODS.join(', ')}` }).default('api'),
    source: z
      .strictObject({ form: z.string().min(1).max(200).optional(), url: z.string().min(1).max(2000).optional() })
      .optional(),
    /** An IAB TCF v2.2 consent string, mapped to purposes by their `tcf_purposes`. */
    tcString: z.string().min(1).max(4096).optional(),
    timestamp: z.iso.datetime({ offset: true, error: 'expected an ISO 8601 date-time with a time zone' }).optional(),
  })
  .refine((r) => r.anonymousId !== undefined || r.userId !== undefined || r.email !== undefined, {
    message: 'expected anonymousId, userId or email: whose consent this is',
    path: ['userId'],
  })
  .refine((r) => r.grant.length > 0 || r.withdraw.length > 0 || r.tcString !== undefined, {
    message: 'expected at least one purpose in grant or withdraw (or a tcString)',
    path: ['grant'],
  })
  .refine((r) => !r.grant.some((p) => r.withdraw.includes(p)), {
    message: 'a purpose cannot be both granted and withdrawn in one request',
    path: ['withdraw'],
  });
export type ConsentRequest = z.infer<typeof ConsentRequest>;

/**
 * `POST /admin/v1/subjects/consent`: a withdrawal or objection a person made by another channel
 * (a letter, a call to support), recorded by a privacy officer. Grants are not taken here: consent
 * is the person's own act, with the notice they saw (GDPR Art. 7(1)).
 */
export const AdminConsentRequest = z
  .strictObject({
    ...SubjectIdentifierFields,
    withdraw: PurposeList.default([]),
    object: PurposeList.default([]),
    /** Where the person asked (ticket number, letter reference); never their personal data. */
    reference: z.string().min(1).max(200),
  })
  .refine(...oneIdentifier)
  .refine((r) => r.withdraw.length + r.object.length > 0, { message: 'expected at least one purpose in withdraw or object', path: ['withdraw'] });
export type AdminConsentRequest = z.infer<typeof AdminConsentRequest>;

import { z } from 'zod';
import { isWellFormed } from './well-formed';

/**
 * What the website kit (`GET /v1/cf.js`) exchanges with the engine beyond the Segment and consent
 * APIs: the consent notice it shows (`GET /v1/consent/notice`), and the page views and events of a
 * visitor who has not consented to analytics (`POST /v1/anonymous`), which carry no identifier at
 * all and become anonymous counts per day, source, type and name (ePrivacy Art. 5(3), GDPR Art. 25).
 */

const NOTICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** `GET /v1/consent/notice?writeKey=…&id=…&lang=…`; other parameters are ignored. */
export const NoticeQuery = z.object({
  writeKey: z.string().max(200).optional(),
  /** One notice id, or several separated by commas: the first one declared in purposes.yaml is shown. */
  id: z
    .string()
    .max(500)
    .refine((list) => list.split(',').every((id) => NOTICE_ID.test(id.trim())), {
      message: 'expected notice ids from rules/purposes.yaml (letters, digits, _, . or -), separated by commas',
    })
    .optional(),
  /** A BCP 47 tag (`pl`, `pl-PL`, `en-GB`); without it, Accept-Language decides. */
  lang: z
    .string()
    .max(35)
    .regex(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/, 'expected a language tag such as "en", "pl" or "pl-PL"')
    .optional(),
});
export type NoticeQuery = z.infer<typeof NoticeQuery>;

/** One purpose as the pop-up shows it, in the visitor's language. */
export const NoticePurpose = z.object({
  name: z.string(),
  description: z.string(),
  legalBasis: z.enum(['consent', 'legitimate_interest']),
  /** "Legal basis: your consent (GDPR Art. 6(1)(a))", in the visitor's language. */
  legalBasisText: z.string(),
  retention: z.string(),
  /** "Kept for 13 months", in the visitor's language. */
  retentionText: z.string(),
  doubleOptIn: z.boolean(),
  /** The purpose lets the engine tie events to a profile: the kit keeps an anonymous id only under it. */
  linksEvents: z.boolean(),
});
export type NoticePurpose = z.infer<typeof NoticePurpose>;

export const NoticeAnswer = z.object({
  lang: z.string(),
  languages: z.array(z.string()),
  /** The notice asked for, in its latest version (null when no id was asked for). */
  notice: z
    .object({
      id: z.string(),
      version: z.number().int(),
      /** The language of the text: the visitor's for a translation `<id>.<lang>`, else English. */
      lang: z.string(),
      text: z.string(),
      /** SHA-256 (hex) of the text, as the ledger records it. */
      sha256: z.string(),
      purposes: z.array(z.string()),
      /** Every version of the notice with its hash: a form's label text names the version it shows. */
      versions: z.array(z.object({ version: z.number().int(), sha256: z.string() })),
    })
    .nullable(),
  /** The purposes of the notice (every purpose when no notice was asked for), in file order. */
  purposes: z.array(NoticePurpose),
  /** The pop-up's and the forms' own words in the visitor's language. */
  ui: z.record(z.string(), z.string()),
});
export type NoticeAnswer = z.infer<typeof NoticeAnswer>;

// C0 and C1 controls (NUL among them, which PostgreSQL text refuses) and lone surrogates would fail
// the shared upsert of other requests' counts: refused here, as the tracking API refuses them.
export const CountedName = z
  .string()
  .max(200, 'expected at most 200 characters')
  .refine((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s) && isWellFormed(s), {
    message: 'control characters and unpaired UTF-16 surrogates are not allowed',
  });

/**
 * One event without anyone in it: only what an anonymous count keeps. Strict, so that an
 * identifier, a property or a context sent here is a 400, not silently stored somewhere.
 */
const ONLY_COUNTED = { error: (issue: { code?: string; keys?: string[] }) =>
  issue.code === 'unrecognized_keys'
    ? `${(issue.keys ?? []).join(', ')}: not taken here; an anonymous event is {"type": "page" | "screen", "name"?} or {"type": "track", "event"}: no identifier, property or context`
    : undefined };

export const AnonymousEvent = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('page'), name: CountedName.optional() }, ONLY_COUNTED),
    z.strictObject({ type: z.literal('screen'), name: CountedName.optional() }, ONLY_COUNTED),
    z.strictObject({ type: z.literal('track'), event: CountedName.min(1, 'expected an event name') }, ONLY_COUNTED),
  ],
  { error: 'expected {"type": "page" | "screen", "name"?} or {"type": "track", "event"}: no identifier, property or context' },
);
export type AnonymousEvent = z.infer<typeof AnonymousEvent>;

/** `POST /v1/anonymous` (JSON, also as text/plain for sendBeacon). */
export const AnonymousBatch = z.strictObject({
  writeKey: z.string().max(200).optional(),
  batch: z.array(AnonymousEvent, { error: 'expected an array of events' }).min(1, 'expected at least one event').max(100, 'expected at most 100 events'),
});
export type AnonymousBatch = z.infer<typeof AnonymousBatch>;

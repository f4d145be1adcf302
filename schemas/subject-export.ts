import { z } from 'zod';
import { CONSENT_METHODS, CONSENT_SOURCE_KINDS } from './consent';
import { DecryptionReason } from './admin';
import { oneIdentifier, SubjectIdentifierFields } from './subject-identifier';

/**
 * The subject export: everything the engine holds about one person, as one JSON document
 * (GDPR Art. 15 right of access; Art. 20 portability: "structured, commonly used and
 * machine-readable"). `schemas/json/subject-export.schema.json` is generated from these schemas
 * (`npm run schemas`) and published with the engine, so whoever receives a file can check it.
 *
 * The engine writes the document in pieces (events and decisions are streamed), in the key order
 * of `SubjectExport` below; every piece is typed from these schemas.
 */

export const SUBJECT_EXPORT_SCHEMA_ID = 'urn:consentflow:schema:subject-export:v1';
export const SUBJECT_EXPORT_FORMAT = 'consentflow.subject-export';
export const SUBJECT_EXPORT_FORMAT_VERSION = 1;

/** `POST /admin/v1/subjects/export`: whose data, and why (kept in the document and the log). */
export const SubjectExportRequest = z
  .strictObject({
    ...SubjectIdentifierFields,
    /** The ticket or letter the request came by; no personal data: it is kept in the audit log (scrubbed). */
    reason: DecryptionReason,
  })
  .refine(...oneIdentifier);
export type SubjectExportRequest = z.infer<typeof SubjectExportRequest>;

const Time = z.iso.datetime();
const Id = z.guid();
/** bigint identity columns, as decimal strings (JSON numbers lose precision past 2^53). */
const SerialId = z.string().regex(/^[0-9]+$/);
const Hex256 = z.string().regex(/^[0-9a-f]{64}$/);

export const ExportedField = z
  .strictObject({
    field: z.string().meta({ description: 'email, phone, name, firstName, …' }),
    value: z.string(),
    sourceId: Id,
    acquiredAt: Time,
  })
  .meta({ description: 'A personal datum decrypted from the vault, with where and when it was acquired (Art. 15(1)(g)).' });
export type ExportedField = z.infer<typeof ExportedField>;

export const ExportedIdentifier = z
  .strictObject({ kind: z.enum(['email', 'user', 'anonymous', 'phone']), sourceId: Id, createdAt: Time })
  .meta({ description: 'A kind of identifier the person is recognised by, and since when. Its value is kept only as a keyed hash; an email or phone is among the fields.' });

export const ExportedTrait = z.strictObject({
  name: z.string(),
  value: z.unknown(),
  sourceId: z.string().meta({ description: 'The source id, or campaign:ID for a trait a campaign set.' }),
  acquiredAt: z.string(),
});
export type ExportedTrait = z.infer<typeof ExportedTrait>;

const ProfileBase = {
  id: Id.meta({ description: 'The pseudonymous profile id (random; no meaning outside this engine).' }),
  sourceId: Id.nullable(),
  createdAt: Time.nullable(),
  lastSeenAt: Time.nullable(),
  traits: z.array(ExportedTrait),
};
export const ExportedProfile = z.strictObject({
  ...ProfileBase,
  pendingMerges: z
    .array(z.strictObject(ProfileBase))
    .meta({ description: 'Profiles merged into this one (the same person, e.g. an earlier anonymous visit) whose data is still being moved; their rows are in this document too.' }),
});
export type ExportedProfile = z.infer<typeof ExportedProfile>;

const Notice = z.strictObject({ id: z.string(), version: z.number().int(), hash: Hex256.meta({ description: 'SHA-256 of the notice text shown (hex).' }) });

export const ExportedLedgerEntry = z
  .strictObject({
    id: SerialId,
    profileId: Id,
    purpose: z.string(),
    decision: z.enum(['granted', 'withdrawn', 'objected']),
    occurredAt: Time.meta({ description: 'When the person acted (the sender’s clock).' }),
    recordedAt: Time.meta({ description: 'When the engine recorded it.' }),
    source: z.strictObject({ kind: z.enum(CONSENT_SOURCE_KINDS), id: Id.nullable(), ref: z.string().nullable() }),
    method: z.enum(CONSENT_METHODS),
    notice: Notice.nullable(),
    ipPrefix: z.string().nullable().meta({ description: 'The network (/24 or /48) the decision came from; never the full address.' }),
    eventMessageId: z.string().nullable(),
    mergedFrom: SerialId.nullable().meta({ description: 'A copy made when two profiles merged: the id of the original row.' }),
  })
  .meta({ description: 'One consent ledger row: the proof of a grant, withdrawal or objection (Art. 7(1)).' });
export type ExportedLedgerEntry = z.infer<typeof ExportedLedgerEntry>;

export const ExportedConsentState = z
  .strictObject({
    purpose: z.string(),
    decision: z.enum(['granted', 'withdrawn', 'objected']),
    occurredAt: Time,
    recordedAt: Time,
    method: z.enum(CONSENT_METHODS),
    ledgerId: SerialId,
  })
  .meta({ description: 'The current state of one purpose: its latest ledger row (in the order recorded).' });
export type ExportedConsentState = z.infer<typeof ExportedConsentState>;

export const ExportedConfirmation = z
  .strictObject({
    id: Id,
    profileId: Id,
    status: z.enum(['pending', 'confirmed', 'expired']),
    purposes: z.array(z.string()),
    notice: Notice,
    sourceId: Id.nullable(),
    sourceRef: z.string().nullable(),
    ipPrefix: z.string().nullable(),
    requestedAt: Time,
    expiresAt: Time,
    emailSentAt: Time.nullable(),
    confirmedAt: Time.nullable(),
  })
  .meta({ description: 'A double opt-in sign-up and whether the person confirmed it from their mailbox.' });
export type ExportedConfirmation = z.infer<typeof ExportedConfirmation>;

export const ExportedSegment = z.strictObject({ profileId: Id, segmentId: z.string(), since: Time });
export type ExportedSegment = z.infer<typeof ExportedSegment>;

export const ExportedEnrolment = z.strictObject({
  id: Id,
  profileId: Id,
  campaignId: z.string(),
  entry: z.number().int(),
  campaignVersion: z.string(),
  ruleSetVersion: z.string(),
  state: z.enum(['active', 'completed', 'exited', 'ended']),
  startedAt: Time,
  wakeAt: Time.nullable(),
  finishedAt: Time.nullable(),
  finishReason: z.string().nullable(),
  journey: z.unknown().meta({ description: 'Where the journey stands (the step it runs or waits on).' }),
});
export type ExportedEnrolment = z.infer<typeof ExportedEnrolment>;

export const ExportedSend = z
  .strictObject({
    id: Id,
    profileId: Id,
    enrolmentId: Id,
    campaignId: z.string(),
    stepId: z.string(),
    template: z.string(),
    dueAt: Time,
    deferredFrom: Time.nullable(),
    state: z.enum(['scheduled', 'sending', 'sent', 'failed', 'skipped', 'cancelled']),
    stateReason: z.string().nullable(),
    createdAt: Time,
    sentAt: Time.nullable(),
  })
  .meta({ description: 'An email scheduled for the person (its template, not its text), and what became of it.' });
export type ExportedSend = z.infer<typeof ExportedSend>;

export const ExportedDecision = z
  .strictObject({
    id: SerialId,
    profileId: Id,
    action: z.string(),
    allowed: z.boolean(),
    reason: z.string(),
    purposes: z.array(z.string()),
    missing: z.array(z.string()),
    ref: z.record(z.string(), z.unknown()),
    ruleId: z.string().nullable(),
    ruleVersion: z.string().nullable(),
    outcome: z.string().nullable(),
    decidedAt: Time,
  })
  .meta({ description: 'Something the engine decided about the person, and why (Art. 15(1)(h), 22).' });
export type ExportedDecision = z.infer<typeof ExportedDecision>;

export const ExportedEvent = z.strictObject({
  id: Id,
  profileId: Id,
  messageId: z.string(),
  type: z.enum(['track', 'identify', 'page', 'screen', 'group', 'alias']),
  name: z.string().nullable(),
  occurredAt: Time,
  receivedAt: Time,
  sourceId: Id,
  properties: z.record(z.string(), z.unknown()),
  context: z.record(z.string(), z.unknown()),
});
export type ExportedEvent = z.infer<typeof ExportedEvent>;

export const ExportedSource = z
  .strictObject({ id: Id, name: z.string() })
  .meta({ description: 'A website, app or channel that data in this document came from (every sourceId above).' });
export type ExportedSource = z.infer<typeof ExportedSource>;

/** What precedes the streamed arrays; the writer parses it once before the first byte goes out. */
export const SubjectExportHead = z.strictObject({
  $schema: z.literal(SUBJECT_EXPORT_SCHEMA_ID),
  format: z.literal(SUBJECT_EXPORT_FORMAT),
  formatVersion: z.literal(SUBJECT_EXPORT_FORMAT_VERSION),
  generatedAt: Time,
  reason: z.string().nullable(),
  identity: z.strictObject({ fields: z.array(ExportedField), identifiers: z.array(ExportedIdentifier) }),
  profile: ExportedProfile,
  consent: z.strictObject({
    current: z.array(ExportedConsentState),
    ledger: z.array(ExportedLedgerEntry),
    confirmations: z.array(ExportedConfirmation),
  }),
  segments: z.array(ExportedSegment).meta({ description: 'The segments (audiences) the person is in.' }),
  enrolments: z.array(ExportedEnrolment),
  sends: z.array(ExportedSend),
});
export type SubjectExportHead = z.infer<typeof SubjectExportHead>;

export const SubjectExport = SubjectExportHead.extend({
  decisions: z.array(ExportedDecision),
  events: z.array(ExportedEvent),
  sources: z.array(ExportedSource),
}).meta({
  $id: SUBJECT_EXPORT_SCHEMA_ID,
  title: 'consentflow subject export',
  description: 'Everything consentflow holds about one person (GDPR Art. 15 access, Art. 20 portability).',
});
export type SubjectExport = z.infer<typeof SubjectExport>;

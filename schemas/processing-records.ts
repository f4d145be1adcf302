import { z } from 'zod';
import { CAPABILITIES, LEGAL_BASES } from './purposes-file';

/**
 * The records of processing activities (GDPR Art. 30(1)) as the engine knows them: built from
 * rules/purposes.yaml, the live campaigns and segments, rules/properties.yaml and the configuration
 * (engine/reports/processing-records.ts). `consentflow report processing --format json` and
 * `GET /admin/v1/processing-records` answer this document. It names categories, never a person, and
 * never a credential: the SMTP relay and webhooks appear without user, password or query.
 */

export const PROCESSING_RECORDS_FORMAT = 'consentflow.processing-records';
export const PROCESSING_RECORDS_FORMAT_VERSION = 1;

export const RecordsPurpose = z.strictObject({
  name: z.string(),
  /** By language code; always has `en`. */
  description: z.record(z.string(), z.string()),
  legalBasis: z.enum(LEGAL_BASES),
  /** `GDPR Art. 6(1)(a)` or `GDPR Art. 6(1)(f)`. */
  legalBasisArticle: z.string(),
  /** Granted only by a confirmed double opt-in (or on the person's preference page). */
  doubleOptIn: z.boolean(),
  /** As written in purposes.yaml, e.g. `13mo`. */
  retention: z.string(),
  /** `13 months`, `2 years`. */
  retentionText: z.string(),
  allows: z.array(z.strictObject({ capability: z.enum(CAPABILITIES), meaning: z.string() })),
  /** Campaigns that need this purpose (their `purposes`). */
  campaigns: z.array(z.string()),
  /** Segments built under this purpose: profiling segments, when the purpose allows build_segments. */
  segments: z.array(z.string()),
});
export type RecordsPurpose = z.infer<typeof RecordsPurpose>;

export const RecordsCampaign = z.strictObject({
  id: z.string(),
  name: z.string(),
  /** Path in the rules directory, e.g. `campaigns/welcome_series.yaml`. */
  file: z.string(),
  purposes: z.array(z.string()),
  /** How it reaches people; empty when it sends nothing (it only sets traits or segments). */
  channels: z.array(z.enum(['email'])),
  trigger: z.enum(['event', 'segment_entered', 'segment_left', 'schedule']),
  /** Started by what the person does: a behavioural trigger, profiling in the sense of Art. 4(4). */
  behavioural: z.boolean(),
});
export type RecordsCampaign = z.infer<typeof RecordsCampaign>;

export const RecordsSegment = z.strictObject({
  id: z.string(),
  name: z.string(),
  file: z.string(),
  /** Evaluates personal aspects (Art. 4(4)); a segment on consent alone is a list, not a profile. */
  profiling: z.boolean(),
  /** The purposes allowing build_segments that a profiling segment needs; empty for a list. */
  purposes: z.array(z.string()),
});
export type RecordsSegment = z.infer<typeof RecordsSegment>;

export const DataSubjectCategory = z.strictObject({ category: z.string(), description: z.string() });
export type DataSubjectCategory = z.infer<typeof DataSubjectCategory>;

export const PersonalDataCategory = z.strictObject({
  category: z.string(),
  description: z.string(),
  /** Field, trait or property names; for events `Event name: property, …`. */
  fields: z.array(z.string()),
  /** Identifies a person on its own (kept only in the vault, encrypted or as keyed hashes). */
  identifying: z.boolean(),
  /** Where and how it is stored. */
  storage: z.string(),
});
export type PersonalDataCategory = z.infer<typeof PersonalDataCategory>;

export const Recipient = z.strictObject({
  kind: z.enum(['smtp_relay', 'outbox_files', 'erasure_webhook']),
  name: z.string(),
  /** `smtp://host:port`, a webhook's origin and path, or the outbox directory; never a credential or query. */
  address: z.string(),
  /** What it receives, and why. */
  receives: z.string(),
});
export type Recipient = z.infer<typeof Recipient>;

export const RetentionEntry = z.strictObject({
  data: z.string(),
  /** `13mo`, `24 months`, `30 days`, `kept while the profile exists`. */
  period: z.string(),
  /** Where the period comes from: a purpose, a configuration variable, a fixed rule. */
  source: z.string(),
});
export type RetentionEntry = z.infer<typeof RetentionEntry>;

export const SecurityMeasure = z.strictObject({ measure: z.string(), description: z.string() });
export type SecurityMeasure = z.infer<typeof SecurityMeasure>;

export const ProcessingRecords = z.strictObject({
  format: z.literal(PROCESSING_RECORDS_FORMAT),
  formatVersion: z.literal(PROCESSING_RECORDS_FORMAT_VERSION),
  generatedAt: z.iso.datetime(),
  /** SHA-256 (hex) of the rule set the records describe. */
  rulesVersion: z.string(),
  /** Art. 30(1)(a): who the controller is; the engine does not know it. */
  controller: z.string(),
  purposes: z.array(RecordsPurpose),
  campaigns: z.array(RecordsCampaign),
  segments: z.array(RecordsSegment),
  dataSubjects: z.array(DataSubjectCategory),
  personalData: z.array(PersonalDataCategory),
  recipients: z.array(Recipient),
  /** Art. 30(1)(e): transfers to a third country or an international organisation. */
  transfers: z.strictObject({ configured: z.boolean(), statement: z.string() }),
  retention: z.array(RetentionEntry),
  security: z.array(SecurityMeasure),
});
export type ProcessingRecords = z.infer<typeof ProcessingRecords>;

/** `GET /admin/v1/processing-records?format=md|json` (default json). */
export const ProcessingRecordsQuery = z.object({
  format: z.enum(['md', 'json'], { error: 'expected md or json' }).default('json'),
});
export type ProcessingRecordsQuery = z.infer<typeof ProcessingRecordsQuery>;

import { z } from 'zod';
import { Role } from './roles';

/**
 * The incident report: what the audit log says was accessed, and by whom, over a period. It
 * supports a notification of a personal data breach (GDPR Art. 33: within 72 hours; 33(3)(a) the
 * categories and approximate number of data subjects concerned) and its documentation (33(5)).
 * `consentflow report incident --format json` prints this document. It holds what the audit log
 * holds: keyed pseudonyms and request ids, never personal data.
 */

export const INCIDENT_REPORT_FORMAT = 'consentflow.incident-report';
export const INCIDENT_REPORT_FORMAT_VERSION = 1;

const Time = z.iso.datetime();
const Outcome = z.enum(['ok', 'denied', 'not_found', 'invalid', 'failed']);
/** bigint sequence numbers, as decimal strings. */
const Seq = z.string().regex(/^[0-9]+$/);

/** One audit entry as the report lists it. */
export const IncidentEntry = z.strictObject({
  seq: Seq,
  at: Time,
  actor: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  outcome: Outcome,
  reason: z.string().nullable(),
});
export type IncidentEntry = z.infer<typeof IncidentEntry>;

export const ActionTotal = z.strictObject({
  action: z.string(),
  total: z.int(),
  /** Entries per outcome; outcomes with none are left out. */
  outcomes: z.partialRecord(Outcome, z.int()),
});
export type ActionTotal = z.infer<typeof ActionTotal>;

export const DeniedByActor = z.strictObject({
  actor: z.string(),
  count: z.int(),
  actions: z.array(z.string()),
  first: Time,
  last: Time,
});
export type DeniedByActor = z.infer<typeof DeniedByActor>;

export const ActiveActor = z.strictObject({
  actor: z.string(),
  /** For a `key:` actor: the key's name and role from app.api_keys (null when the key is unknown). */
  key: z
    .strictObject({ id: z.string(), name: z.string(), role: Role, revokedAt: Time.nullable() })
    .nullable(),
  entries: z.int(),
  decryptions: z.int(),
  denied: z.int(),
  first: Time,
  last: Time,
});
export type ActiveActor = z.infer<typeof ActiveActor>;

export const IncidentReport = z.strictObject({
  format: z.literal(INCIDENT_REPORT_FORMAT),
  formatVersion: z.literal(INCIDENT_REPORT_FORMAT_VERSION),
  generatedAt: Time,
  /** From `since` (included) to `until` (excluded). */
  period: z.strictObject({ since: Time, until: Time }),
  totals: z.strictObject({
    entries: z.int(),
    byOutcome: z.partialRecord(Outcome, z.int()),
    byAction: z.array(ActionTotal),
  }),
  /** Every decryption of personal data (`detail.decrypted`): when, who, whose (a pseudonym), why. */
  decryptions: z.array(IncidentEntry),
  /** Distinct subjects (targets) whose personal data was decrypted in the period. */
  subjectsDecrypted: z.int(),
  denied: z.array(DeniedByActor),
  /** keys.create, keys.revoke. */
  keyChanges: z.array(IncidentEntry),
  /** subject.erase entries. */
  erasures: z.array(IncidentEntry),
  /** subject.export entries. */
  exports: z.array(IncidentEntry),
  actors: z.array(ActiveActor),
  /** The whole chain, not only the period: a removal before the period matters as much. */
  chain: z.strictObject({
    ok: z.boolean(),
    entries: z.int(),
    problems: z.array(z.strictObject({ seq: z.string(), message: z.string() })),
  }),
});
export type IncidentReport = z.infer<typeof IncidentReport>;

import type { ColumnType, Generated, Insertable, Kysely, Selectable, Transaction } from 'kysely';

/**
 * Table types of schema `app`: pseudonymous data only (DESIGN.md, "Stores"). Keep in step with the
 * migrations under ./migrations/app.
 */
export interface ApiKeysTable {
  id: Generated<string>;
  name: string;
  role: 'marketer' | 'operator' | 'privacy_officer' | 'admin';
  /** SHA-256 of the whole key; the key itself is shown once and never stored. */
  key_hash: Buffer;
  /** The first characters of the key, so people can tell keys apart in listings. */
  key_prefix: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** After this the key authenticates nothing; null: it does not expire. */
  expires_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** Recorded at most once a minute per process (engine/auth/last-use.ts). */
  last_used_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface SourcesTable {
  id: Generated<string>;
  name: string;
  write_key_hash: Buffer;
  write_key_prefix: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  /** Origins whose browsers may call the tracking API with this key (`*`: any); empty: none. */
  allowed_origins: ColumnType<string[], string[] | undefined, string[]>;
}

/** A trait value with its provenance (invariant 3). */
export interface TraitValue {
  v: unknown;
  /** Source id. */
  src: string;
  /** When it was acquired (ISO 8601). */
  at: string;
}

export interface ProfilesTable {
  id: string;
  source_id: string;
  created_at: ColumnType<Date, Date | undefined, never>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  last_seen_at: Date;
  traits: ColumnType<Record<string, TraitValue>, string | undefined, string>;
}

export interface EventReceiptsTable {
  source_id: string;
  message_id: string;
  received_at: Date;
}

export interface EventRejectionsTable {
  id: Generated<string>;
  source_id: string;
  message_id: string;
  received_at: Date;
  reason: string;
  rejected_at: ColumnType<Date, Date | undefined, never>;
}

export type EventType = 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias';

export interface EventsTable {
  id: Generated<string>;
  profile_id: string | null;
  source_id: string;
  message_id: string;
  type: EventType;
  name: string | null;
  occurred_at: Date;
  received_at: Date;
  properties: ColumnType<Record<string, unknown>, string, string>;
  context: ColumnType<Record<string, unknown>, string, string>;
}

export type ConsentDecisionKind = 'granted' | 'withdrawn' | 'objected';
export type ConsentSourceKind = 'write_key' | 'form' | 'url' | 'email_link' | 'preference_page' | 'admin' | 'import' | 'browser_signal';
export type ConsentMethod =
  | 'form'
  | 'banner'
  | 'double_opt_in'
  | 'api'
  | 'email_link'
  | 'preference_page'
  | 'browser_signal'
  | 'tcf'
  | 'admin'
  | 'import';

/** Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE outside erasure). */
export interface ConsentLedgerTable {
  id: Generated<string>;
  profile_id: string;
  purpose: string;
  decision: ConsentDecisionKind;
  occurred_at: Date;
  recorded_at: ColumnType<Date, Date | undefined, never>;
  source_kind: ConsentSourceKind;
  source_id: string | null;
  source_ref: string | null;
  method: ConsentMethod;
  notice_id: string | null;
  notice_version: number | null;
  notice_hash: Buffer | null;
  ip_prefix: string | null;
  event_message_id: string | null;
  merged_from: string | null;
}

/** A view: the latest ledger row per (profile, purpose). */
export interface ConsentCurrentView {
  profile_id: string;
  purpose: string;
  decision: ConsentDecisionKind;
  occurred_at: Date;
  recorded_at: Date;
  method: ConsentMethod;
  source_kind: ConsentSourceKind;
  notice_id: string | null;
  notice_version: number | null;
  ledger_id: string;
}

export interface ConsentConfirmationsTable {
  id: string;
  profile_id: string;
  purposes: string[];
  notice_id: string;
  notice_version: number;
  notice_hash: Buffer;
  source_id: string | null;
  source_ref: string | null;
  ip_prefix: string | null;
  event_message_id: string | null;
  requested_at: Date;
  expires_at: Date;
  email_sent_at: Date | null;
  confirmed_at: Date | null;
}

/** Unlinked events, as anonymous counts only. */
export interface EventCountsTable {
  day: string;
  source_id: string;
  type: EventType;
  name: string;
  count: ColumnType<string, number, number>;
}

export interface DecisionsTable {
  id: Generated<string>;
  profile_id: string;
  action: string;
  allowed: boolean;
  reason: string;
  purposes: string[];
  missing: ColumnType<string[], string[] | undefined, string[]>;
  ref: ColumnType<Record<string, unknown>, string | undefined, string>;
  decided_at: ColumnType<Date, Date | undefined, never>;
  rule_id: string | null;
  rule_version: string | null;
  outcome: string | null;
}

export interface RuleSetsTable {
  version: string;
  files: ColumnType<Record<string, string>, string, string>;
  first_loaded_at: ColumnType<Date, Date | undefined, never>;
  last_loaded_at: ColumnType<Date, Date | undefined, Date>;
}

export interface SegmentStateTable {
  profile_id: string;
  segment_id: string;
  member: boolean;
  changed_at: Date;
  recheck_at: Date | null;
}

export type EnrolmentState = 'active' | 'completed' | 'exited' | 'ended';

export interface EnrolmentsTable {
  id: Generated<string>;
  campaign_id: string;
  profile_id: string;
  entry: number;
  campaign_version: string;
  rule_set_version: string;
  state: EnrolmentState;
  journey: ColumnType<unknown, string, string>;
  started_at: Date;
  wake_at: Date | null;
  finished_at: Date | null;
  finish_reason: string | null;
}

export interface OutboxTable {
  id: Generated<string>;
  queue: string;
  job_name: string;
  job_id: string;
  payload: ColumnType<Record<string, unknown>, string, string>;
  run_at: Date;
  created_at: ColumnType<Date, Date | undefined, never>;
  relayed_at: Date | null;
}

export type SendState = 'scheduled' | 'sending' | 'sent' | 'failed' | 'skipped' | 'cancelled';

export interface ScheduledSendsTable {
  id: Generated<string>;
  enrolment_id: string;
  profile_id: string;
  campaign_id: string;
  step_id: string;
  template: string;
  due_at: Date;
  deferred_from: Date | null;
  state: ColumnType<SendState, SendState | undefined, SendState>;
  state_reason: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
  claimed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  sent_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  message_id: ColumnType<string | null, string | null | undefined, string | null>;
  attempts: ColumnType<number, number | undefined, number>;
}

export interface BroadcastTicksTable {
  campaign_id: string;
  tick_at: Date;
  campaign_version: string;
  started_at: ColumnType<Date, Date | undefined, never>;
  cursor: string | null;
  members: ColumnType<number, number | undefined, number>;
  finished_at: Date | null;
}

export interface SuppressionsTable {
  hash: Buffer;
  reason: 'hard_bounce' | 'complaint' | 'manual' | 'erased';
  detail: string | null;
  created_at: ColumnType<Date, Date | undefined, never>;
}

export type ErasureState = 'pending' | 'running' | 'completed' | 'failed';
export type ErasureOrigin = 'admin_api' | 'cli' | 'self_service' | 'retention';

export interface ErasureRequestsTable {
  id: string;
  identifier_kind: 'email' | 'user' | 'anonymous' | null;
  identifier_hash: Buffer | null;
  requested_by: string;
  origin: ErasureOrigin;
  requested_at: ColumnType<Date, Date | undefined, never>;
  deadline_at: Date;
  state: ColumnType<ErasureState, ErasureState | undefined, ErasureState>;
  step: ColumnType<number, number | undefined, number>;
  deep_verify: ColumnType<boolean, boolean | undefined, boolean>;
  work: ColumnType<Record<string, unknown>, string | undefined, string>;
  subject_sealed: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  counts: ColumnType<Record<string, number>, string | undefined, string>;
  webhooks: ColumnType<unknown[], string | undefined, string>;
  verification: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  receipt: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  receipt_signature: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  completed_at: Date | null;
}

export type AuditOutcome = 'ok' | 'denied' | 'not_found' | 'invalid' | 'failed';

/** One entry of the hash-chained audit log (engine/audit). */
export interface AuditLogTable {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  reason: string | null;
  detail: ColumnType<Record<string, unknown>, string, never>;
  prev_hash: Buffer;
  hash: Buffer;
}

export interface Database {
  'app.api_keys': ApiKeysTable;
  'app.sources': SourcesTable;
  'app.profiles': ProfilesTable;
  'app.event_receipts': EventReceiptsTable;
  'app.event_rejections': EventRejectionsTable;
  'app.events': EventsTable;
  'app.consent_ledger': ConsentLedgerTable;
  'app.consent_current': ConsentCurrentView;
  'app.consent_confirmations': ConsentConfirmationsTable;
  'app.decisions': DecisionsTable;
  'app.event_counts': EventCountsTable;
  'app.rule_sets': RuleSetsTable;
  'app.segment_state': SegmentStateTable;
  'app.enrolments': EnrolmentsTable;
  'app.scheduled_sends': ScheduledSendsTable;
  'app.outbox': OutboxTable;
  'app.suppressions': SuppressionsTable;
  'app.broadcast_ticks': BroadcastTicksTable;
  'app.erasure_requests': ErasureRequestsTable;
  'app.audit_log': AuditLogTable;
}

export type IdentityKind = 'email' | 'user' | 'anonymous' | 'phone';

/** Table types of schema `vault`: keys, blind indexes and ciphertext only. */
export interface VaultDatabase {
  'vault.subject_keys': { profile_id: string; wrapped_key: Buffer; created_at: ColumnType<Date, Date | undefined, never> };
  'vault.identities': {
    kind: IdentityKind;
    hash: Buffer;
    profile_id: string;
    source_id: string;
    created_at: ColumnType<Date, Date | undefined, never>;
  };
  'vault.subject_fields': { profile_id: string; field: string; ciphertext: Buffer; source_id: string; acquired_at: Date };
  'vault.erasure_tombstones': {
    kind: IdentityKind;
    hash: Buffer;
    request_id: string;
    erased_at: ColumnType<Date, Date | undefined, never>;
    expires_at: Date;
  };
  'vault.profile_merges': {
    loser_id: string;
    winner_id: string;
    merged_at: ColumnType<Date, Date | undefined, never>;
    applied_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  };
}

export type VaultDb = Kysely<VaultDatabase>;
export type VaultDbOrTrx = Kysely<VaultDatabase> | Transaction<VaultDatabase>;

export type Db = Kysely<Database>;
/** What repositories take: the pool or a caller's transaction. */
export type DbOrTrx = Kysely<Database> | Transaction<Database>;

export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKey = Insertable<ApiKeysTable>;

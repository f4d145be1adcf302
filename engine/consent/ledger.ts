import { sql } from 'kysely';
import type { ConsentDecisionKind, ConsentMethod, ConsentSourceKind, DbOrTrx } from '../db/types';
import type { ConsentState, PurposeState } from './gate';

/**
 * The consent ledger (app.consent_ledger): rows are only ever added. The current state is read from
 * the app.consent_current view, which takes the latest row per purpose.
 */

export interface LedgerEntry {
  readonly profileId: string;
  readonly purpose: string;
  readonly decision: ConsentDecisionKind;
  readonly occurredAt: Date;
  readonly sourceKind: ConsentSourceKind;
  readonly sourceId?: string | undefined;
  readonly sourceRef?: string | undefined;
  readonly method: ConsentMethod;
  readonly notice?: { readonly id: string; readonly version: number; readonly hash: Buffer } | undefined;
  readonly ipPrefix?: string | undefined;
  readonly eventMessageId?: string | undefined;
}

export async function appendLedger(db: DbOrTrx, entries: readonly LedgerEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await db
    .insertInto('app.consent_ledger')
    .values(
      entries.map((e) => ({
        profile_id: e.profileId,
        purpose: e.purpose,
        decision: e.decision,
        occurred_at: e.occurredAt,
        source_kind: e.sourceKind,
        source_id: e.sourceId ?? null,
        source_ref: e.sourceRef ?? null,
        method: e.method,
        notice_id: e.notice?.id ?? null,
        notice_version: e.notice?.version ?? null,
        notice_hash: e.notice?.hash ?? null,
        ip_prefix: e.ipPrefix ?? null,
        event_message_id: e.eventMessageId ?? null,
        merged_from: null,
      })),
    )
    .execute();
}

/** The current consent of each profile asked for (profiles with no row get an empty state). */
export async function currentConsent(db: DbOrTrx, profileIds: readonly string[]): Promise<Map<string, Map<string, PurposeState>>> {
  const states = new Map<string, Map<string, PurposeState>>(profileIds.map((id) => [id, new Map()]));
  if (profileIds.length === 0) return states;
  const rows = await db
    .selectFrom('app.consent_current')
    .select(['profile_id', 'purpose', 'decision', 'occurred_at', 'method'])
    .where('profile_id', 'in', [...new Set(profileIds)])
    .execute();
  for (const row of rows) {
    states.get(row.profile_id)?.set(row.purpose, { decision: row.decision, occurredAt: row.occurred_at, method: row.method });
  }
  return states;
}

export async function consentOf(db: DbOrTrx, profileId: string): Promise<ConsentState> {
  return (await currentConsent(db, [profileId])).get(profileId) ?? new Map();
}

/**
 * When an anonymous profile merges into another, its consent history goes with it: each row is
 * copied to the survivor (the ledger is never rewritten), marked with the row it came from, so a
 * merge applied again copies nothing twice. A copy keeps its original recorded_at, so the latest
 * decision per purpose, across both profiles, wins (not the copy for being copied last).
 */
export async function copyLedgerOnMerge(db: DbOrTrx, loser: string, winner: string): Promise<void> {
  await sql`insert into app.consent_ledger
      (profile_id, purpose, decision, occurred_at, recorded_at, source_kind, source_id, source_ref, method,
       notice_id, notice_version, notice_hash, ip_prefix, event_message_id, merged_from)
    select ${winner}, purpose, decision, occurred_at, recorded_at, source_kind, source_id, source_ref, method,
       notice_id, notice_version, notice_hash, ip_prefix, event_message_id, id
    from app.consent_ledger where profile_id = ${loser}
    on conflict (profile_id, merged_from) where merged_from is not null do nothing`.execute(db);
}

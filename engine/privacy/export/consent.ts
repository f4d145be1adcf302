import { sql } from 'kysely';
import type { ExportedConfirmation, ExportedLedgerEntry, SubjectExportHead } from '../../../schemas/subject-export';
import type { DbOrTrx } from '../../db/types';

const iso = (d: Date | null) => d?.toISOString() ?? null;

/**
 * The person's consent with what proves it (GDPR Art. 7(1)): every ledger row, the current state
 * per purpose, and the double opt-in sign-ups. A person's consent history is short (it grows with
 * their own acts, not with their events), so it is read whole, by the profile indexes.
 */
export async function readConsent(db: DbOrTrx, profileIds: readonly string[], now: Date): Promise<SubjectExportHead['consent']> {
  const rows = await db
    .selectFrom('app.consent_ledger')
    .selectAll()
    // The current state as app.consent_current takes it: the latest row per purpose in the order
    // recorded (recorded_at with its microseconds, then id), here across a pending merge too.
    .select(sql<boolean>`row_number() over (partition by purpose order by recorded_at desc, id desc) = 1`.as('is_current'))
    .where('profile_id', 'in', [...profileIds])
    .orderBy('id')
    .execute();
  // Between a merge's commit in schema `app` and its mark in the vault, a pending loser's rows are
  // already copied to the winner: each decision is listed once, as the copy that stays. The copy
  // has the larger id, so it is also the one the current state points at.
  const copied = new Set(rows.flatMap((r) => (r.merged_from === null ? [] : [String(r.merged_from)])));
  const kept = rows.filter((r) => !copied.has(String(r.id)));
  const ledger = kept.map(
    (r): ExportedLedgerEntry => ({
      id: String(r.id),
      profileId: r.profile_id,
      purpose: r.purpose,
      decision: r.decision,
      occurredAt: r.occurred_at.toISOString(),
      recordedAt: r.recorded_at.toISOString(),
      source: { kind: r.source_kind, id: r.source_id, ref: r.source_ref },
      method: r.method,
      notice:
        r.notice_id !== null && r.notice_version !== null && r.notice_hash !== null
          ? { id: r.notice_id, version: r.notice_version, hash: r.notice_hash.toString('hex') }
          : null,
      ipPrefix: r.ip_prefix,
      eventMessageId: r.event_message_id,
      mergedFrom: r.merged_from === null ? null : String(r.merged_from),
    }),
  );
  const current = ledger
    .filter((_, i) => kept[i]?.is_current)
    .sort((a, b) => (a.purpose < b.purpose ? -1 : 1))
    .map((r) => ({ purpose: r.purpose, decision: r.decision, occurredAt: r.occurredAt, recordedAt: r.recordedAt, method: r.method, ledgerId: r.id }));

  const confirmations = await db
    .selectFrom('app.consent_confirmations')
    .selectAll()
    .where('profile_id', 'in', [...profileIds])
    .orderBy('requested_at')
    .execute();

  return {
    current,
    ledger,
    confirmations: confirmations.map(
      (c): ExportedConfirmation => ({
        id: c.id,
        profileId: c.profile_id,
        status: c.confirmed_at ? 'confirmed' : c.expires_at <= now ? 'expired' : 'pending',
        purposes: c.purposes,
        notice: { id: c.notice_id, version: c.notice_version, hash: c.notice_hash.toString('hex') },
        sourceId: c.source_id,
        sourceRef: c.source_ref,
        ipPrefix: c.ip_prefix,
        requestedAt: c.requested_at.toISOString(),
        expiresAt: c.expires_at.toISOString(),
        emailSentAt: iso(c.email_sent_at),
        confirmedAt: iso(c.confirmed_at),
      }),
    ),
  };
}

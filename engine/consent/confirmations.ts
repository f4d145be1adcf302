import { sql } from 'kysely';
import type { Db, DbOrTrx } from '../db/types';
import { lockProfileRows } from '../db/profile-locks';
import { appendLedger } from './ledger';

/**
 * Double opt-in (the sign-up is proven by a click in the mailbox it names): a confirmation row waits
 * for the signed link; the click grants its purposes with method `double_opt_in`; an unconfirmed one
 * lapses at expires_at and grants nothing.
 */

export type ConfirmationState =
  | { readonly state: 'pending'; readonly purposes: readonly string[]; readonly expiresAt: Date }
  | { readonly state: 'confirmed'; readonly purposes: readonly string[]; readonly profileId: string }
  | { readonly state: 'expired' }
  | { readonly state: 'not_found' };

export async function confirmationState(db: DbOrTrx, id: string, now = new Date()): Promise<ConfirmationState> {
  const row = await db.selectFrom('app.consent_confirmations').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) return { state: 'not_found' };
  if (row.confirmed_at) return { state: 'confirmed', purposes: row.purposes, profileId: row.profile_id };
  if (row.expires_at <= now) return { state: 'expired' };
  return { state: 'pending', purposes: row.purposes, expiresAt: row.expires_at };
}

export type ConfirmOutcome =
  | { readonly outcome: 'confirmed' | 'already_confirmed'; readonly profileId: string; readonly purposes: readonly string[] }
  | { readonly outcome: 'expired' | 'not_found' };

/**
 * Grants the confirmation's purposes, once: the row is locked, so two clicks at once grant once.
 * The ledger row keeps the notice of the sign-up and the network of the click that proved it.
 */
export async function confirmSubscription(
  db: Db,
  id: string,
  click: { ipPrefix: string | undefined },
  now = new Date(),
  /** Runs in the same transaction once the grant is written (the rules react to the new consent). */
  afterGrant?: (trx: DbOrTrx, profileId: string) => Promise<unknown>,
): Promise<ConfirmOutcome> {
  return db.transaction().execute(async (trx) => {
    // The person's profile row first, then the confirmation: the order every path locks in (a batch
    // merging this profile holds the profile and then moves its confirmations).
    const peek = await trx.selectFrom('app.consent_confirmations').select('profile_id').where('id', '=', id).executeTakeFirst();
    if (peek) await lockProfileRows(trx, [peek.profile_id]);
    const row = await trx.selectFrom('app.consent_confirmations').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) return { outcome: 'not_found' };
    if (row.confirmed_at) return { outcome: 'already_confirmed', profileId: row.profile_id, purposes: row.purposes };
    if (row.expires_at <= now) return { outcome: 'expired' };
    await appendLedger(
      trx,
      row.purposes.map((purpose) => ({
        profileId: row.profile_id,
        purpose,
        decision: 'granted' as const,
        occurredAt: now,
        sourceKind: 'email_link' as const,
        sourceId: row.source_id ?? undefined,
        sourceRef: row.source_ref ?? undefined,
        method: 'double_opt_in' as const,
        notice: { id: row.notice_id, version: row.notice_version, hash: row.notice_hash },
        ipPrefix: click.ipPrefix,
        eventMessageId: row.event_message_id ?? undefined,
      })),
    );
    await trx.updateTable('app.consent_confirmations').set({ confirmed_at: now }).where('id', '=', id).execute();
    await afterGrant?.(trx, row.profile_id);
    return { outcome: 'confirmed', profileId: row.profile_id, purposes: row.purposes };
  });
}

/** Purposes waiting for the person's confirmation click. */
export async function pendingPurposes(db: DbOrTrx, profileId: string, now = new Date()): Promise<string[]> {
  const rows = await db
    .selectFrom('app.consent_confirmations')
    .select('purposes')
    .where('profile_id', '=', profileId)
    .where('confirmed_at', 'is', null)
    .where('expires_at', '>', now)
    .execute();
  return [...new Set(rows.flatMap((r) => r.purposes))];
}

/** Confirmations committed but never emailed (their enqueue was lost): the sweeper queues them again. */
export async function unsentConfirmations(db: DbOrTrx, olderThanMs: number, limit = 500): Promise<string[]> {
  const rows = await db
    .selectFrom('app.consent_confirmations')
    .select('id')
    .where('email_sent_at', 'is', null)
    .where('confirmed_at', 'is', null)
    .where('requested_at', '<', new Date(Date.now() - olderThanMs))
    .where('expires_at', '>', sql<Date>`now()`)
    .orderBy('requested_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

export async function markConfirmationSent(db: DbOrTrx, id: string): Promise<void> {
  await db.updateTable('app.consent_confirmations').set({ email_sent_at: new Date() }).where('id', '=', id).execute();
}

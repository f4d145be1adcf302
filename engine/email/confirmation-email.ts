import { UnrecoverableError } from 'bullmq';
import type { Config, Keys } from '../config';
import { confirmationLink, preferenceLink } from '../consent/links';
import { confirmationState, markConfirmationSent } from '../consent/confirmations';
import type { PurposeCatalog } from '../consent/purposes';
import type { Databases } from '../db/connect';
import { lockSubjectKeys, readField } from '../vault/fields';
import { parseAddress } from './address';
import { DeliveryError, type Mailer } from './mailer';

export interface ConfirmationEmailDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly databases: Databases;
  readonly catalog: PurposeCatalog;
  readonly mailer: Mailer;
}

export type ConfirmationEmailOutcome = 'sent' | 'already_sent' | 'confirmed' | 'expired' | 'gone' | 'no_address' | 'invalid_address';

/**
 * Sends a double opt-in confirmation. The address is decrypted here, at send time, and nowhere
 * else (DESIGN.md invariant 5: the email worker is the one reader of addresses for sending).
 * Expected outcomes (already confirmed, expired, erased) are values; a relay's permanent refusal is
 * an UnrecoverableError, a transient one is retried by the queue.
 */
export async function sendConfirmationEmail(deps: ConfirmationEmailDeps, confirmationId: string): Promise<ConfirmationEmailOutcome> {
  const { db, vaultDb } = deps.databases;
  const state = await confirmationState(db, confirmationId);
  if (state.state === 'not_found') return 'gone';
  if (state.state === 'confirmed') return 'confirmed';
  if (state.state === 'expired') return 'expired';
  const row = await db.selectFrom('app.consent_confirmations').select(['profile_id', 'email_sent_at']).where('id', '=', confirmationId).executeTakeFirstOrThrow();
  if (row.email_sent_at) return 'already_sent';
  const address = await vaultDb.transaction().execute(async (trx) => {
    const key = (await lockSubjectKeys(trx, deps.keys.master, [row.profile_id])).get(row.profile_id);
    return key ? readField(trx, key, 'email') : undefined;
  });
  // The address rule (address.ts) before the mailer: a value it refuses is never handed on.
  const recipient = address ? parseAddress(address) : undefined;
  if (!recipient?.ok) {
    // Nothing to send to (the address was erased or is not valid): let it lapse now, so the sweeper
    // does not queue it again every minute for a week.
    await db.updateTable('app.consent_confirmations').set({ expires_at: new Date() }).where('id', '=', confirmationId).execute();
    return recipient ? 'invalid_address' : 'no_address';
  }

  const base = deps.config.http.publicUrl;
  const confirm = confirmationLink(base, deps.keys.linkSigning, confirmationId, state.expiresAt);
  const prefs = preferenceLink(base, deps.keys.linkSigning, row.profile_id);
  const what = state.purposes.map((name) => deps.catalog.get(name)?.description.en ?? name).join('\n- ');
  try {
    await deps.mailer.send({
      to: recipient.address,
      subject: 'Please confirm your subscription',
      messageId: `confirm-${confirmationId}`,
      text: `Hello,

someone (we hope you) asked to receive our emails at this address:
- ${what}

To confirm, open this link:
${confirm}

If it was not you, ignore this email: nothing happens without your confirmation, and the request lapses on ${state.expiresAt.toISOString().slice(0, 10)}.

Your choices, at any time: ${prefs}
`,
      headers: { 'Auto-Submitted': 'auto-generated' },
    });
  } catch (err) {
    if (err instanceof DeliveryError && err.permanent) throw new UnrecoverableError(`confirmation refused by the relay: ${err.message}`);
    throw err;
  }
  await markConfirmationSent(db, confirmationId);
  return 'sent';
}

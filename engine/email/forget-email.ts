import { UnrecoverableError } from 'bullmq';
import type { Config, Keys } from '../config';
import { forgetLink } from '../consent/links';
import type { Databases } from '../db/connect';
import { lockSubjectKeys, readField } from '../vault/fields';
import { parseAddress } from './address';
import { DeliveryError, type Mailer } from './mailer';

export interface ForgetEmailDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly databases: Databases;
  readonly mailer: Mailer;
}

export type ForgetEmailOutcome = 'sent' | 'expired' | 'no_address' | 'invalid_address';

/**
 * "Forget me" from the preference page is confirmed from the person's mailbox (issue 7): a
 * preference link can be forwarded with a newsletter, the mailbox cannot. The address is read from
 * the vault here, at send time, as for every other email (DESIGN.md invariant 5).
 */
export async function sendForgetConfirmation(deps: ForgetEmailDeps, profileId: string, expiresAt: Date): Promise<ForgetEmailOutcome> {
  if (expiresAt.getTime() <= Date.now()) return 'expired';
  const address = await deps.databases.vaultDb.transaction().execute(async (trx) => {
    const key = (await lockSubjectKeys(trx, deps.keys.master, [profileId])).get(profileId);
    return key ? readField(trx, key, 'email') : undefined;
  });
  if (!address) return 'no_address';
  // The address rule (address.ts) before the mailer: a value it refuses is never handed on.
  const recipient = parseAddress(address);
  if (!recipient.ok) return 'invalid_address';
  const link = forgetLink(deps.config.http.publicUrl, deps.keys.linkSigning, profileId, expiresAt);
  try {
    await deps.mailer.send({
      to: recipient.address,
      subject: 'Confirm: erase all your data',
      messageId: `forget-${profileId}-${expiresAt.getTime()}`,
      text: `Hello,

someone (we hope you) asked us to erase everything we hold about you: your profile, your activity,
your consents and your subscriptions (GDPR Art. 17). It cannot be undone.

To confirm, open this link and press the button:
${link}

If it was not you, ignore this email: nothing happens without your confirmation, and the link lapses on ${expiresAt.toISOString().slice(0, 10)}.
`,
      headers: { 'Auto-Submitted': 'auto-generated' },
    });
  } catch (err) {
    if (err instanceof DeliveryError && err.permanent) throw new UnrecoverableError(`forget confirmation refused by the relay: ${err.message}`);
    throw err;
  }
  return 'sent';
}

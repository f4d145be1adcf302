import { reactToConsent } from '../automation/react-to-consent';
import type { Db } from '../db/types';
import { lockProfileRows } from '../db/profile-locks';
import type { CompiledRuleSet } from '../rules/compile';
import { decide } from './gate';
import { appendLedger, consentOf } from './ledger';
import { verifyLink } from './links';
import type { PurposeCatalog } from './purposes';

/**
 * Unsubscribing with the signed token of one send, however it arrives: the one-click POST of
 * List-Unsubscribe (RFC 8058, engine/http/routes/unsubscribe.ts) or an email to its mailto address
 * (RFC 2369, `consentflow unsubscribe-mail`). Both withdraw the marketing-email purposes of the
 * send's campaign in one step (withdrawing is as easy as consenting: GDPR Art. 7(3)), and the
 * person's journeys under them end and their sends are cancelled.
 */

export interface UnsubscribeDeps {
  readonly db: Db;
  readonly linkSigningKey: Buffer;
  readonly rules: { readonly purposes: PurposeCatalog; readonly compiled: CompiledRuleSet };
}

export interface UnsubscribeRequest {
  /** The signed `unsub` token (engine/consent/links.ts). */
  readonly token: string;
  /** How the person asked, recorded as the ledger row's source reference. */
  readonly via: 'link' | 'mail';
  readonly ipPrefix?: string | undefined;
  readonly now?: Date;
}

export type UnsubscribeOutcome =
  | {
      readonly ok: true;
      readonly sendId: string;
      /** What this request withdrew: empty when nothing was still allowed (a second click). */
      readonly withdrawn: readonly string[];
      /** Outbox rows the rules wrote: the caller relays them after the commit. */
      readonly outboxWritten: number;
      /** The rules failed after the withdrawal: it is recorded and the person marked for a re-check. */
      readonly automationError?: string;
    }
  /** `invalid_token`: malformed, tampered or of another kind; `gone`: the send (the person) was erased. */
  | { readonly ok: false; readonly reason: 'invalid_token' | 'gone' };

const SOURCE_REF = { link: 'unsubscribe link', mail: 'unsubscribe email (List-Unsubscribe mailto)' } as const;

/** Checks the token first: a bad one changes nothing. */
export async function unsubscribeWithToken(deps: UnsubscribeDeps, request: UnsubscribeRequest): Promise<UnsubscribeOutcome> {
  const link = verifyLink(deps.linkSigningKey, 'unsub', request.token);
  if (!link.ok) return { ok: false, reason: 'invalid_token' };
  const sendId = link.payload.s;
  const send = await deps.db.selectFrom('app.scheduled_sends').select(['profile_id', 'campaign_id']).where('id', '=', sendId).executeTakeFirst();
  if (!send) return { ok: false, reason: 'gone' };
  const catalog = deps.rules.purposes;
  const marketing = catalog.providing('send_marketing_email').map((p) => p.name);
  const campaignPurposes = deps.rules.compiled.campaigns.get(send.campaign_id)?.file.purposes ?? marketing;
  const purposes = marketing.filter((p) => campaignPurposes.includes(p));
  let outboxWritten = 0;
  let automationError: string | undefined;
  const withdrawn = await deps.db.transaction().execute(async (trx) => {
    await lockProfileRows(trx, [send.profile_id]);
    const state = await consentOf(trx, send.profile_id);
    // Only what is still allowed is withdrawn: a second click (or email) records nothing more.
    const toWithdraw = purposes.filter((p) => decide(catalog, state, { purposes: [p] }).allowed);
    const now = request.now ?? new Date();
    await appendLedger(
      trx,
      toWithdraw.map((purpose) => ({
        profileId: send.profile_id,
        purpose,
        decision: 'withdrawn' as const,
        occurredAt: now,
        sourceKind: 'email_link' as const,
        sourceRef: `${SOURCE_REF[request.via]} of send ${sendId}`,
        method: 'email_link' as const,
        ipPrefix: request.ipPrefix,
      })),
    );
    if (toWithdraw.length > 0) {
      const reacted = await reactToConsent(trx, { compiled: deps.rules.compiled, catalog }, send.profile_id);
      if (reacted.ok) outboxWritten = reacted.outcome.outboxWritten;
      else automationError = reacted.error;
    }
    return toWithdraw;
  });
  return { ok: true, sendId, withdrawn, outboxWritten, ...(automationError !== undefined ? { automationError } : {}) };
}

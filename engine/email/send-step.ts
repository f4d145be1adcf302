import { durationMs } from '../../schemas/rules/conditions';
import type { Config, Keys } from '../config';
import { campaignDecision } from '../automation/campaign-decision';
import { recordDecisions } from '../consent/decisions';
import { decide } from '../consent/gate';
import { consentOf } from '../consent/ledger';
import { preferenceLink, unsubscribeLink } from '../consent/links';
import type { Databases } from '../db/connect';
import type { Db, SendState, TraitValue } from '../db/types';
import { addToOutbox } from '../outbox/outbox';
import type { CompiledRuleSet } from '../rules/compile';
import { isTimeZone, quietHoursEnd } from '../rules/journey';
import { blindIndex } from '../vault/crypto';
import { readSendingFields } from '../vault/fields';
import { normalizeEmail } from '../vault/normalize';
import { DeliveryError, type Mailer } from './mailer';
import type { TemplateSet } from './templates';
import { addTracking } from './tracking';

/**
 * One scheduled send, at its time. In this order (issue 6): the row is claimed (scheduled →
 * sending); consent for the campaign's purposes, exit, quiet hours and the frequency cap are checked
 * again now (a withdrawal wins over anything scheduled: DESIGN.md invariant 2); the address and first
 * name are decrypted from the vault (here only: invariant 5); the suppression list is checked; the
 * template is rendered; the message goes out with a Message-ID derived from the send id.
 */

export interface SendDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly databases: Databases;
  readonly compiled: CompiledRuleSet;
  readonly templates: TemplateSet;
  readonly mailer: Mailer;
  readonly traitNames: ReadonlySet<string>;
}

export type SendOutcome =
  | { readonly state: 'sent'; readonly messageId: string }
  | { readonly state: 'skipped' | 'failed' | 'cancelled'; readonly reason: string }
  | { readonly state: 'deferred'; readonly until: Date }
  | { readonly state: 'not_due' | 'not_scheduled' | 'in_flight' };

/** A claim older than this is a worker that died mid-send: the send is taken over (same Message-ID). */
const STALE_CLAIM_MS = 2 * 60_000;

async function finish(db: Db, sendId: string, state: SendState, reason: string | null, extra: { sent_at?: Date; message_id?: string } = {}): Promise<void> {
  await db.updateTable('app.scheduled_sends').set({ state, state_reason: reason, ...extra }).where('id', '=', sendId).execute();
}

interface Claimed {
  readonly profileId: string;
  readonly campaignId: string;
  readonly template: string;
  readonly messageId: string;
  readonly traits: Readonly<Record<string, TraitValue>>;
  readonly tracking: boolean;
}

/** Claims the row and checks everything that can be checked before decrypting anything. */
async function claim(deps: SendDeps, sendId: string, now: Date): Promise<Claimed | SendOutcome> {
  const db = deps.databases.db;
  return db.transaction().execute(async (trx): Promise<Claimed | SendOutcome> => {
    // The send row alone is locked: a batch that exits the journey meanwhile (holding the profile)
    // waits for this claim and then finds the send no longer `scheduled`. Consent is read now, at
    // the claim, the moment of action; no profile lock is needed, so none can deadlock.
    const send = await trx.selectFrom('app.scheduled_sends').selectAll().where('id', '=', sendId).forUpdate().executeTakeFirst();
    if (!send) return { state: 'not_scheduled' };
    if (send.state === 'sending' && send.claimed_at && now.getTime() - send.claimed_at.getTime() < STALE_CLAIM_MS) return { state: 'in_flight' };
    if (send.state !== 'scheduled' && send.state !== 'sending') return { state: 'not_scheduled' };
    if (send.due_at.getTime() > now.getTime() + 1_000) return { state: 'not_due' };
    const skip = async (reason: string): Promise<SendOutcome> => {
      await trx.updateTable('app.scheduled_sends').set({ state: 'skipped', state_reason: reason }).where('id', '=', sendId).execute();
      await recordDecisions(trx, [
        campaignDecision(send.profile_id, send.campaign_id, deps.compiled.campaigns.get(send.campaign_id), 'send_skipped', false, reason, {
          send: sendId,
          step: send.step_id,
        }),
      ]);
      return { state: 'skipped', reason };
    };

    const campaign = deps.compiled.campaigns.get(send.campaign_id);
    if (!campaign) return skip('the campaign is no longer in the rule set');
    const enrolment = await trx.selectFrom('app.enrolments').select(['state']).where('id', '=', send.enrolment_id).executeTakeFirst();
    if (!enrolment || enrolment.state === 'exited' || enrolment.state === 'ended') return skip(`the journey ${enrolment ? enrolment.state : 'is gone'}`);
    const consentState = await consentOf(trx, send.profile_id);
    const consent = decide(deps.compiled.ruleSet.purposes, consentState, { purposes: campaign.file.purposes });
    if (!consent.allowed) return skip(`no consent at send time: ${consent.reason}`);
    if (!deps.templates.has(send.template)) return skip(`no template ${send.template} in the rule set`);

    const profile = await trx.selectFrom('app.profiles').select('traits').where('id', '=', send.profile_id).executeTakeFirst();
    if (!profile) return skip('the profile no longer exists');
    const limits = campaign.file.limits;
    if (limits.quiet_hours) {
      const tz = (profile.traits as Record<string, TraitValue>).timezone?.v;
      const zone = typeof tz === 'string' && isTimeZone(tz) ? tz : limits.quiet_hours.timezone;
      const until = quietHoursEnd(now, limits.quiet_hours, zone);
      if (until) {
        // Checked again at send time: a retry or a late job must not wake anyone at night.
        await trx.updateTable('app.scheduled_sends').set({ due_at: until, deferred_from: send.deferred_from ?? send.due_at }).where('id', '=', sendId).execute();
        await addToOutbox(trx, [{ queue: 'email', job: 'send', jobId: `send-${sendId}-${until.getTime()}`, payload: { sendId }, runAt: until }]);
        return { state: 'deferred', until };
      }
    }
    const cap = limits.frequency_cap;
    if (cap) {
      const since = new Date(now.getTime() - durationMs(cap.per));
      const sent = await trx
        .selectFrom('app.scheduled_sends')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('profile_id', '=', send.profile_id)
        .where('state', 'in', ['sent', 'sending'])
        .where('id', '!=', sendId)
        .where('sent_at', '>=', since)
        .executeTakeFirst();
      const count = Number(sent?.n ?? 0);
      if (count >= cap.max) return skip(`frequency cap at send time: ${count} ${cap.channel} sends in the last ${cap.per}, at most ${cap.max}`);
    }
    const messageId = send.message_id ?? `send-${sendId}`;
    await trx
      .updateTable('app.scheduled_sends')
      .set({ state: 'sending', claimed_at: now, attempts: send.attempts + 1, message_id: messageId })
      .where('id', '=', sendId)
      .execute();
    return {
      profileId: send.profile_id,
      campaignId: send.campaign_id,
      template: send.template,
      messageId,
      traits: profile.traits as Record<string, TraitValue>,
      // Opens and clicks only with consent to tie behaviour to the person (analytics), read with the rest.
      tracking: decide(deps.compiled.ruleSet.purposes, consentState, { capability: 'link_events_to_profile' }).allowed,
    };
  });
}

export async function performSend(deps: SendDeps, sendId: string, now = new Date()): Promise<SendOutcome> {
  const claimed = await claim(deps, sendId, now);
  if ('state' in claimed) return claimed;
  const db = deps.databases.db;
  const { vaultDb } = deps.databases;
  const fields = await readSendingFields(vaultDb, deps.keys.master, claimed.profileId);
  const address = fields?.email ? normalizeEmail(fields.email) : undefined;
  if (!fields?.email || !address) {
    await finish(db, sendId, 'skipped', 'no email address in the vault');
    return { state: 'skipped', reason: 'no email address in the vault' };
  }
  const hash = blindIndex(deps.keys.pseudonym, 'email', address);
  const suppressed = await db.selectFrom('app.suppressions').select('reason').where('hash', '=', hash).executeTakeFirst();
  if (suppressed) {
    await finish(db, sendId, 'skipped', `the address is suppressed (${suppressed.reason})`);
    return { state: 'skipped', reason: `the address is suppressed (${suppressed.reason})` };
  }
  const campaign = deps.compiled.campaigns.get(claimed.campaignId);
  const traits = Object.fromEntries(
    Object.entries(claimed.traits)
      .filter(([name]) => deps.traitNames.has(name))
      .map(([name, t]) => [name, t.v]),
  );
  const base = deps.config.http.publicUrl;
  const unsubscribe = unsubscribeLink(base, deps.keys.linkSigning, sendId);
  const rendered = await deps.templates.render(claimed.template, {
    ...(fields.firstName ? { first_name: fields.firstName } : {}),
    traits,
    unsubscribe_url: unsubscribe,
    preferences_url: preferenceLink(base, deps.keys.linkSigning, claimed.profileId),
    campaign: { id: claimed.campaignId, name: campaign?.file.name ?? claimed.campaignId },
    send_id: sendId,
  });
  const preferences = preferenceLink(base, deps.keys.linkSigning, claimed.profileId);
  // Opens and clicks only with the person's consent to tie behaviour to them (analytics).
  const html = claimed.tracking
    ? addTracking(rendered.html, base, deps.keys.linkSigning, sendId, [unsubscribe, preferences])
    : rendered.html;
  try {
    await deps.mailer.send({
      to: fields.email,
      subject: rendered.subject,
      html,
      text: rendered.text,
      messageId: claimed.messageId,
      headers: {
        // RFC 8058 one-click unsubscribe, as Gmail and Yahoo require of bulk senders.
        'List-Unsubscribe': `<${unsubscribe}>`,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'X-Consentflow-Campaign': claimed.campaignId,
      },
    });
  } catch (err) {
    if (err instanceof DeliveryError && err.permanent) {
      const reason = `refused by the relay: ${err.message}`.slice(0, 500);
      await finish(db, sendId, 'failed', reason);
      // 5.1.x: the mailbox does not exist (RFC 3463): never mail it again.
      if (/\b5\.1\.\d\b/.test(err.message)) {
        await db
          .insertInto('app.suppressions')
          .values({ hash, reason: 'hard_bounce', detail: `send ${sendId}` })
          .onConflict((oc) => oc.column('hash').doNothing())
          .execute();
      }
      return { state: 'failed', reason };
    }
    // Transient: back to scheduled, and the queue retries with backoff.
    await finish(db, sendId, 'scheduled', `retrying: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500));
    throw err;
  }
  await finish(db, sendId, 'sent', null, { sent_at: new Date(), message_id: claimed.messageId });
  return { state: 'sent', messageId: claimed.messageId };
}

/** Overdue sends still scheduled: their job may be gone (a Redis loss); queue them again (same id). */
export async function overdueSends(db: Db, now: Date, limit = 500): Promise<string[]> {
  const rows = await db
    .selectFrom('app.scheduled_sends')
    .select('id')
    .where('state', '=', 'scheduled')
    .where('due_at', '<', new Date(now.getTime() - 60_000))
    .orderBy('due_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

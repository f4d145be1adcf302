import { sql, type Transaction } from 'kysely';
import { durationMs } from '../../schemas/rules/conditions';
import { campaignDecision } from '../automation/campaign-decision';
import { type Decision, recordDecisions } from '../consent/decisions';
import { decide } from '../consent/gate';
import { currentConsent } from '../consent/ledger';
import type { Database, Db, TraitValue } from '../db/types';
import { addToOutbox } from '../outbox/outbox';
import type { CompiledRuleSet } from '../rules/compile';
import { isTimeZone, quietHoursEnd } from '../rules/journey';
import type { SendOutcome } from './send-outcome';
import type { TemplateSet } from './templates';

/**
 * The claim of due sends (issue 6, docs/email.md "From a journey step to a message", step 2), for
 * many sends in one transaction: their rows are locked (in id order), checked again now, and each
 * either becomes `sending`, or is skipped with its reason, or deferred past quiet hours. Everything
 * is read for the whole batch at once (the rows with their enrolments' states and their people's
 * traits, then the current consent, then any frequency cap's counts): a send costs a share of a few
 * statements instead of a transaction of its own. Nothing is decrypted here.
 *
 * Each send is judged exactly as if it were claimed alone, against the same rows: the lock on the
 * send row is what makes it exactly once (invariant 7), and consent is read inside the transaction
 * that holds it, at the moment of action (invariant 2). One difference, on the safe side: a send
 * claimed earlier in the batch counts towards a later send's frequency cap, as it would had it gone
 * out first.
 */

export interface ClaimDeps {
  readonly databases: { readonly db: Db };
  readonly compiled: CompiledRuleSet;
  readonly templates: Pick<TemplateSet, 'has'>;
}

/** A send now `sending`, and what the rest of it needs from the claim. */
export interface Claimed {
  readonly sendId: string;
  readonly profileId: string;
  readonly campaignId: string;
  readonly template: string;
  readonly messageId: string;
  readonly traits: Readonly<Record<string, TraitValue>>;
  /** Opens and clicks only with consent to tie behaviour to the person (analytics), read with the rest. */
  readonly tracking: boolean;
}

type Trx = Transaction<Database>;

/**
 * Claimers lock their rows in id order, so they never deadlock each other. A transaction that
 * locks several of the same rows in another order can (one ending a person's journeys, when the
 * batch holds two sends of that person): PostgreSQL then rolls one back (SQLSTATE 40P01), and a
 * claim rolled back is tried again.
 */
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);
const CLAIM_ATTEMPTS = 3;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A claim older than this is a worker that died mid-send: the send is taken over (same Message-ID). */
export const STALE_CLAIM_MS = 2 * 60_000;

type SendRow = Awaited<ReturnType<typeof lockSends>>[number];

/**
 * The send rows, locked (FOR UPDATE OF the sends only, in id order), with their enrolment's state and
 * their person's traits read in the same statement.
 */
function lockSends(trx: Trx, ids: readonly string[]) {
  return trx
    .selectFrom('app.scheduled_sends as s')
    .leftJoin('app.enrolments as e', 'e.id', 's.enrolment_id')
    .leftJoin('app.profiles as p', 'p.id', 's.profile_id')
    .selectAll('s')
    .select(['e.state as enrolment_state', 'p.traits as traits'])
    .where('s.id', 'in', ids)
    .orderBy('s.id')
    .forUpdate('s')
    .execute();
}

/**
 * Claims the sends (ids may repeat: the second of two jobs of one send finds it in flight). The
 * result is in the order of `sendIds`.
 */
export async function claimSends(deps: ClaimDeps, sendIds: readonly string[], now: Date): Promise<Array<Claimed | SendOutcome>> {
  const unique = [...new Set(sendIds)].sort();
  if (unique.length === 0) return [];
  let decided: Map<string, Claimed | SendOutcome>;
  for (let attempt = 1; ; attempt++) {
    try {
      decided = await deps.databases.db.transaction().execute((trx) => claimLocked(deps, trx, unique, now));
      break;
    } catch (err) {
      // Rolled back whole: nothing was claimed, so the batch may simply run again.
      if (attempt >= CLAIM_ATTEMPTS || !RETRYABLE_SQLSTATES.has(sqlState(err) ?? '')) throw err;
    }
  }
  const seen = new Set<string>();
  return sendIds.map((id) => {
    if (seen.has(id)) return { state: 'in_flight' };
    seen.add(id);
    return decided.get(id) ?? { state: 'not_scheduled' };
  });
}

async function claimLocked(deps: ClaimDeps, trx: Trx, ids: readonly string[], now: Date): Promise<Map<string, Claimed | SendOutcome>> {
  const out = new Map<string, Claimed | SendOutcome>();
  // The send rows alone are locked: a batch that exits a journey meanwhile (holding the profile)
  // waits for this claim and then finds the send no longer `scheduled`. No profile lock is taken.
  const due: SendRow[] = [];
  for (const send of await lockSends(trx, ids)) {
    if (send.state === 'sending' && send.claimed_at && now.getTime() - send.claimed_at.getTime() < STALE_CLAIM_MS) out.set(send.id, { state: 'in_flight' });
    else if (send.state !== 'scheduled' && send.state !== 'sending') out.set(send.id, { state: 'not_scheduled' });
    else if (send.due_at.getTime() > now.getTime() + 1_000) out.set(send.id, { state: 'not_due' });
    else due.push(send);
  }
  if (due.length === 0) return out;

  const { campaigns, ruleSet } = deps.compiled;
  const profileIds = [...new Set(due.map((s) => s.profile_id))];
  const consents = await currentConsent(trx, profileIds);
  const recent = await recentSends(trx, due, deps.compiled, now);

  const skips: Array<{ send: SendRow; reason: string }> = [];
  const deferrals: Array<{ send: SendRow; until: Date }> = [];
  const claims: SendRow[] = [];
  const claimedNow = new Map<string, number>();
  for (const send of due) {
    const skip = (reason: string) => {
      skips.push({ send, reason });
      out.set(send.id, { state: 'skipped', reason });
    };
    const campaign = campaigns.get(send.campaign_id);
    if (!campaign) {
      skip('the campaign is no longer in the rule set');
      continue;
    }
    const enrolment = send.enrolment_state;
    if (!enrolment || enrolment === 'exited' || enrolment === 'ended') {
      skip(`the journey ${enrolment ?? 'is gone'}`);
      continue;
    }
    const consentState = consents.get(send.profile_id) ?? new Map();
    const consent = decide(ruleSet.purposes, consentState, { purposes: campaign.file.purposes });
    if (!consent.allowed) {
      skip(`no consent at send time: ${consent.reason}`);
      continue;
    }
    if (!deps.templates.has(send.template)) {
      skip(`no template ${send.template} in the rule set`);
      continue;
    }
    const traits = send.traits as Record<string, TraitValue> | null;
    if (!traits) {
      skip('the profile no longer exists');
      continue;
    }
    const limits = campaign.file.limits;
    if (limits.quiet_hours) {
      const tz = traits.timezone?.v;
      const zone = typeof tz === 'string' && isTimeZone(tz) ? tz : limits.quiet_hours.timezone;
      const until = quietHoursEnd(now, limits.quiet_hours, zone);
      if (until) {
        // Checked again at send time: a retry or a late job must not wake anyone at night.
        deferrals.push({ send, until });
        out.set(send.id, { state: 'deferred', until, reason: 'quiet_hours' });
        continue;
      }
    }
    const cap = limits.frequency_cap;
    if (cap) {
      const count = (recent.get(`${send.profile_id} ${cap.per}`) ?? 0) + (claimedNow.get(send.profile_id) ?? 0);
      if (count >= cap.max) {
        skip(`frequency cap at send time: ${count} ${cap.channel} sends in the last ${cap.per}, at most ${cap.max}`);
        continue;
      }
    }
    claims.push(send);
    claimedNow.set(send.profile_id, (claimedNow.get(send.profile_id) ?? 0) + 1);
    out.set(send.id, {
      sendId: send.id,
      profileId: send.profile_id,
      campaignId: send.campaign_id,
      template: send.template,
      messageId: send.message_id ?? `send-${send.id}`,
      traits,
      tracking: decide(ruleSet.purposes, consentState, { capability: 'link_events_to_profile' }).allowed,
    });
  }

  if (skips.length > 0) {
    await sql`update app.scheduled_sends as s set state = 'skipped', state_reason = v.reason
      from unnest(${skips.map((k) => k.send.id)}::uuid[], ${skips.map((k) => k.reason)}::text[]) as v(id, reason)
      where s.id = v.id`.execute(trx);
    await recordDecisions(
      trx,
      skips.map(({ send, reason }): Decision =>
        campaignDecision(send.profile_id, send.campaign_id, campaigns.get(send.campaign_id), 'send_skipped', false, reason, { send: send.id, step: send.step_id }),
      ),
    );
  }
  if (deferrals.length > 0) {
    await sql`update app.scheduled_sends as s set due_at = v.until, deferred_from = coalesce(s.deferred_from, s.due_at)
      from unnest(${deferrals.map((d) => d.send.id)}::uuid[], ${deferrals.map((d) => d.until)}::timestamptz[]) as v(id, until)
      where s.id = v.id`.execute(trx);
    await addToOutbox(
      trx,
      deferrals.map(({ send, until }) => ({ queue: 'email' as const, job: 'send' as const, jobId: `send-${send.id}-${until.getTime()}`, payload: { sendId: send.id }, runAt: until })),
    );
  }
  if (claims.length > 0) {
    await trx
      .updateTable('app.scheduled_sends')
      .set((eb) => ({
        state: 'sending',
        claimed_at: now,
        attempts: eb('attempts', '+', 1),
        message_id: eb.fn.coalesce('message_id', sql<string>`'send-' || id::text`),
      }))
      .where('id', 'in', claims.map((s) => s.id))
      .execute();
  }
  return out;
}

/**
 * Sends already made to each person within each frequency cap's window, keyed `profile per`: one
 * statement a distinct window among the batch's campaigns (usually none or one). The batch's own
 * sends are not counted (none of them has gone out yet).
 */
async function recentSends(trx: Trx, due: readonly SendRow[], compiled: CompiledRuleSet, now: Date): Promise<Map<string, number>> {
  const byWindow = new Map<string, Set<string>>();
  for (const send of due) {
    const per = compiled.campaigns.get(send.campaign_id)?.file.limits.frequency_cap?.per;
    if (per) byWindow.set(per, (byWindow.get(per) ?? new Set()).add(send.profile_id));
  }
  const counts = new Map<string, number>();
  for (const [per, profileIds] of byWindow) {
    const rows = await trx
      .selectFrom('app.scheduled_sends')
      .select((eb) => ['profile_id', eb.fn.countAll<string>().as('n')])
      .where('profile_id', 'in', [...profileIds])
      .where('state', 'in', ['sent', 'sending'])
      .where('id', 'not in', due.map((s) => s.id))
      .where('sent_at', '>=', new Date(now.getTime() - durationMs(per)))
      .groupBy('profile_id')
      .execute();
    for (const row of rows) counts.set(`${row.profile_id} ${per}`, Number(row.n));
  }
  return counts;
}

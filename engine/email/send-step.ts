import { sql } from 'kysely';
import type { Config, Keys } from '../config';
import { preferenceLink, signLink, unsubscribeLink } from '../consent/links';
import type { Databases } from '../db/connect';
import type { Db, SendState } from '../db/types';
import type { CompiledRuleSet } from '../rules/compile';
import { blindIndex } from '../vault/crypto';
import { readSendingFields } from '../vault/fields';
import { normalizeEmail } from '../vault/normalize';
import { ADDRESS_RULE, parseAddress } from './address';
import { coalesce } from './coalesce';
import { type DomainLimiter, type DomainTake, deferClaimedSend } from './domain-limits';
import { DeliveryError, type Mailer } from './mailer';
import { type Claimed, claimSends, STALE_CLAIM_MS } from './send-claim';
import type { SendOutcome } from './send-outcome';
import type { TemplateSet } from './templates';
import { addTracking } from './tracking';
import { unsubscribeMailto } from './unsubscribe-mail';

export type { SendOutcome } from './send-outcome';

/**
 * Scheduled sends, at their time. In this order (issue 6): the row is claimed (scheduled →
 * sending); consent for the campaign's purposes, exit, quiet hours and the frequency cap are checked
 * again now (a withdrawal wins over anything scheduled: DESIGN.md invariant 2; send-claim.ts); the
 * address and first name are decrypted from the vault (here only: invariant 5); the suppression list
 * is checked; the template is rendered; the message goes out with a Message-ID derived from the send id.
 *
 * The email worker claims the sends whose jobs it holds together, in batches (createSender): the
 * claim, the vault read, the suppression check and the final update each take one statement for the
 * batch, not one a send. `performSend` is the same path for a single send.
 */

export interface SendDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly databases: Databases;
  readonly compiled: CompiledRuleSet;
  readonly templates: TemplateSet;
  readonly mailer: Mailer;
  readonly traitNames: ReadonlySet<string>;
  /** EMAIL_DOMAIN_RATE_LIMITS (domain-limits.ts); unset: no per-domain limit. */
  readonly domainLimiter?: DomainLimiter | undefined;
}

/** The end of a claimed send, as its row records it. */
interface FinishRow {
  readonly sendId: string;
  readonly state: SendState;
  readonly reason: string | null;
  readonly sentAt?: Date;
  readonly messageId?: string;
}

/** Writes a finished send's row: alone (performSend) or with others' (the worker's group commit). */
type Finish = (row: FinishRow) => Promise<void>;

async function finishRows(db: Db, rows: readonly FinishRow[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`update app.scheduled_sends as s
    set state = v.state, state_reason = v.reason, sent_at = coalesce(v.sent_at, s.sent_at), message_id = coalesce(v.message_id, s.message_id)
    from unnest(${rows.map((r) => r.sendId)}::uuid[], ${rows.map((r) => r.state)}::text[], ${rows.map((r) => r.reason)}::text[],
      ${rows.map((r) => r.sentAt ?? null)}::timestamptz[], ${rows.map((r) => r.messageId ?? null)}::text[]) as v(id, state, reason, sent_at, message_id)
    where s.id = v.id`.execute(db);
}

/** A claimed send with its recipient, ready to render and deliver. */
interface Ready {
  readonly claimed: Claimed;
  readonly to: string;
  readonly address: string;
  readonly firstName: string | undefined;
  readonly hash: Buffer;
}

/** A claimed send that ends before rendering: skipped (no address, suppressed) or failed (an invalid address). */
interface NotSent {
  readonly state: 'skipped' | 'failed';
  readonly reason: string;
}

/** A send of the batch once claimed and read: ready to deliver, or its outcome (a skip's once its row is written). */
type Prepared = Ready | SendOutcome | Promise<SendOutcome>;

/** The rule set of the moment a batch starts, for the whole batch (the getters follow reloads). */
interface Rules {
  readonly compiled: CompiledRuleSet;
  readonly templates: TemplateSet;
  readonly traitNames: ReadonlySet<string>;
}

/**
 * Once the batch is claimed, reads the claimed sends' recipients from the vault and checks them
 * against the suppression list, a statement each for the whole batch. If either read fails, the
 * claimed sends go back to `scheduled` and fail, so their jobs retry.
 */
async function prepare(deps: SendDeps, claiming: Promise<Array<Claimed | SendOutcome>>, finish: Finish): Promise<Prepared[]> {
  const claims = await claiming;
  const claimed = claims.filter((c): c is Claimed => 'sendId' in c);
  if (claimed.length === 0) return claims.map((c) => ('sendId' in c ? { state: 'in_flight' } : c));
  const checked = new Map<string, Ready | NotSent>();
  try {
    const fields = await readSendingFields(deps.databases.vaultDb, deps.keys.master, claimed.map((c) => c.profileId));
    const ready: Ready[] = [];
    for (const c of claimed) {
      const f = fields.get(c.profileId);
      if (!f?.email) {
        checked.set(c.sendId, { state: 'skipped', reason: 'no email address in the vault' });
        continue;
      }
      // The address rule (address.ts) again, before anything is rendered: a value stored before the
      // rule, or by a path that skipped it, fails this send for good, with the reason (never the address).
      const recipient = parseAddress(f.email);
      const address = recipient.ok ? normalizeEmail(recipient.address) : undefined;
      if (!recipient.ok || !address) {
        checked.set(c.sendId, { state: 'failed', reason: `not sent: the address in the vault is not valid (${recipient.ok ? ADDRESS_RULE : recipient.reason})`.slice(0, 500) });
        continue;
      }
      ready.push({ claimed: c, to: recipient.address, address, firstName: f.firstName, hash: blindIndex(deps.keys.pseudonym, 'email', address) });
    }
    const suppressions =
      ready.length === 0 ? [] : await deps.databases.db.selectFrom('app.suppressions').select(['hash', 'reason']).where('hash', 'in', ready.map((r) => r.hash)).execute();
    const suppressed = new Map(suppressions.map((s) => [s.hash.toString('hex'), s.reason]));
    for (const r of ready) {
      const reason = suppressed.get(r.hash.toString('hex'));
      checked.set(r.claimed.sendId, reason === undefined ? r : { state: 'skipped', reason: `the address is suppressed (${reason})` });
    }
  } catch (err) {
    // The sends were claimed: release them, so the jobs' retries claim them again.
    const reason = `retrying: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500);
    await Promise.allSettled(claimed.map((c) => recordEnd(finish, { sendId: c.sendId, state: 'scheduled', reason })));
    throw err;
  }
  return claims.map((c): Prepared => {
    if (!('sendId' in c)) return c;
    const check = checked.get(c.sendId);
    if (check === undefined) return { state: 'in_flight' };
    if ('claimed' in check) return check;
    return finish({ sendId: c.sendId, state: check.state, reason: check.reason }).then((): SendOutcome => ({ state: check.state, reason: check.reason }));
  });
}

interface SendBatch {
  /**
   * Settles once the batch's claim is committed: the next batch may claim (the reads of this one and
   * its deliveries may still be under way).
   */
  readonly claimed: Promise<unknown>;
  /** One a send id, in order: each settles when its own send is over (throws to have the job retried). */
  readonly outcomes: ReadonlyArray<Promise<SendOutcome>>;
}

/** Starts the sends of one batch (a send id may appear twice: the second finds it in flight). */
function startSends(deps: SendDeps, sendIds: readonly string[], now: Date, finish: Finish): SendBatch {
  const rules: Rules = { compiled: deps.compiled, templates: deps.templates, traitNames: deps.traitNames };
  const claimed = claimSends({ databases: deps.databases, compiled: rules.compiled, templates: rules.templates }, sendIds, now);
  const prepared = prepare(deps, claimed, finish);
  const outcomes = sendIds.map(async (_, i): Promise<SendOutcome> => {
    const entry = (await prepared)[i];
    if (!entry) throw new Error('a send of the batch was not prepared');
    return 'claimed' in entry ? deliver(deps, rules, entry, now, finish) : entry;
  });
  return { claimed, outcomes };
}

/** One send, now: the worker's path, for a batch of one, its row written alone. */
export async function performSend(deps: SendDeps, sendId: string, now = new Date()): Promise<SendOutcome> {
  const db = deps.databases.db;
  const [outcome] = startSends(deps, [sendId], now, (row) => finishRows(db, [row])).outcomes;
  if (!outcome) throw new Error('the send was not started');
  return outcome;
}

export interface SenderOptions {
  /** Most sends claimed (and rows written) in one statement: the jobs the worker runs at once. */
  readonly maxBatch: number;
  /** How long a claim waits for more sends before it starts (default 0: at once, with what has arrived). */
  readonly claimWaitMs?: number;
  /**
   * How long a finished send's row waits for others' before it is written (default 0). A wait makes
   * fewer, bigger statements, but the row says `sent` that much after the relay took the message.
   */
  readonly finishWaitMs?: number;
}

/**
 * The email worker's sender: the sends of the jobs it runs at once are claimed together, and their
 * rows written together when they end (coalesce.ts: a batch takes whatever arrived while the one
 * before it ran, up to `maxBatch`). Each call settles with its own send, as performSend would.
 */
export function createSender(deps: SendDeps, options: SenderOptions): (sendId: string) => Promise<SendOutcome> {
  const db = deps.databases.db;
  const finish = coalesce<FinishRow, void>(
    (rows) => {
      const done = finishRows(db, rows);
      return { done, results: rows.map(() => done) };
    },
    { maxBatch: options.maxBatch, waitMs: options.finishWaitMs ?? 0 },
  );
  return coalesce<string, SendOutcome>(
    (sendIds) => {
      const batch = startSends(deps, sendIds, new Date(), finish);
      return { done: batch.claimed, results: batch.outcomes };
    },
    { maxBatch: options.maxBatch, waitMs: options.claimWaitMs ?? 0 },
  );
}

/** Renders and delivers one claimed send, and records how it ended. */
async function deliver(deps: SendDeps, rules: Rules, ready: Ready, now: Date, finish: Finish): Promise<SendOutcome> {
  const { claimed, to, address } = ready;
  const { sendId } = claimed;
  const domainTurn = await takeDomainTurn(deps, sendId, address, now, finish);
  if (domainTurn) return domainTurn;
  // A batch's sends become ready at once; each is rendered in a turn of its own, so the relay's
  // replies to the messages before it are read in between rather than after the whole batch.
  await new Promise((resolve) => setImmediate(resolve));
  const campaign = rules.compiled.campaigns.get(claimed.campaignId);
  const traits = Object.fromEntries(
    Object.entries(claimed.traits)
      .filter(([name]) => rules.traitNames.has(name))
      .map(([name, t]) => [name, t.v]),
  );
  const base = deps.config.http.publicUrl;
  const unsubscribe = unsubscribeLink(base, deps.keys.linkSigning, sendId);
  const preferences = preferenceLink(base, deps.keys.linkSigning, claimed.profileId);
  const mailto = deps.config.email.unsubscribeMailto;
  const rendered = await rules.templates.render(claimed.template, {
    ...(ready.firstName ? { first_name: ready.firstName } : {}),
    traits,
    unsubscribe_url: unsubscribe,
    preferences_url: preferences,
    campaign: { id: claimed.campaignId, name: campaign?.file.name ?? claimed.campaignId },
    send_id: sendId,
  });
  // Opens and clicks only with the person's consent to tie behaviour to them (analytics).
  const html = claimed.tracking
    ? addTracking(rendered.html, base, deps.keys.linkSigning, sendId, [unsubscribe, preferences])
    : rendered.html;
  try {
    await deps.mailer.send({
      to,
      subject: rendered.subject,
      html,
      text: rendered.text,
      messageId: claimed.messageId,
      headers: {
        // RFC 8058 one-click unsubscribe, as Gmail and Yahoo require of bulk senders; with a mailbox
        // that `consentflow unsubscribe-mail` reads, the mailto form too (RFC 2369), same token.
        'List-Unsubscribe': mailto ? `<${unsubscribe}>, <${unsubscribeMailto(mailto, signLink(deps.keys.linkSigning, 'unsub', { s: sendId }))}>` : `<${unsubscribe}>`,
        'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
        'X-Consentflow-Campaign': claimed.campaignId,
      },
    });
  } catch (err) {
    if (err instanceof DeliveryError && err.permanent) {
      // Without a reply code the relay never saw it: the message itself was refused here (mime.ts).
      const reason = `${err.responseCode === undefined ? 'not sent' : 'refused by the relay'}: ${err.message}`.slice(0, 500);
      await recordEnd(finish, { sendId, state: 'failed', reason });
      // 5.1.x: the mailbox does not exist (RFC 3463): never mail it again.
      if (/\b5\.1\.\d\b/.test(err.message)) {
        await deps.databases.db
          .insertInto('app.suppressions')
          .values({ hash: ready.hash, reason: 'hard_bounce', detail: `send ${sendId}` })
          .onConflict((oc) => oc.column('hash').doNothing())
          .execute();
      }
      return { state: 'failed', reason };
    }
    // Transient: back to scheduled, and the queue retries with backoff.
    await recordEnd(finish, { sendId, state: 'scheduled', reason: `retrying: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500) });
    throw err;
  }
  await recordEnd(finish, { sendId, state: 'sent', reason: null, sentAt: new Date(), messageId: claimed.messageId });
  return { state: 'sent', messageId: claimed.messageId };
}

/**
 * How long a claimed send keeps trying to record how it ended (well within STALE_CLAIM_MS and the
 * job's timeout). A claimed row whose end could not be written stays `sending`: the job's retry finds
 * the claim fresh and completes, and only the stale-claim sweep takes the send over, two to three
 * minutes later, sending it again if the relay had taken it. A PostgreSQL restart did both: 64 of 294
 * emails delivered twice (their `sent` not written), and sends released after a failed vault read
 * left `sending` until the sweep (test/faults/postgres-restart.fault.ts). The worker knows how each
 * send ended, so it waits a little for the database rather than forget.
 */
const RECORD_END_FOR_MS = 30_000;

async function recordEnd(finish: Finish, row: FinishRow): Promise<void> {
  const giveUpAt = Date.now() + RECORD_END_FOR_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 4_000)) {
    try {
      await finish(row);
      return;
    } catch (err) {
      // Past the budget: the job fails, the claim goes stale, and the sweep's take-over sends again
      // (with the same Message-ID: the SMTP window, docs/reliability.md scenario 6c).
      if (Date.now() + delay > giveUpAt) throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * The recipient domain's turn (EMAIL_DOMAIN_RATE_LIMITS): undefined to send now; else the claim is
 * released back to `scheduled` at the domain's next free turn, never attempted, never lost.
 */
async function takeDomainTurn(deps: SendDeps, sendId: string, address: string, now: Date, finish: Finish): Promise<SendOutcome | undefined> {
  if (!deps.domainLimiter) return undefined;
  let turn: DomainTake;
  try {
    turn = await deps.domainLimiter.take(address, sendId, now);
  } catch (err) {
    // Redis unreachable: back to scheduled, and the queue retries with backoff.
    await finish({ sendId, state: 'scheduled', reason: `retrying: the domain rate limit could not be read: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500) });
    throw err;
  }
  if (turn.ok) return undefined;
  await deferClaimedSend(deps.databases.db, sendId, turn.until);
  return { state: 'deferred', until: turn.until, reason: 'domain_rate_limit' };
}

/**
 * Sends whose job may be gone, to queue again (same id): still scheduled a minute past due (a Redis
 * loss), or claimed longer than STALE_CLAIM_MS ago by a worker that died mid-send (the job's rerun
 * takes the claim over and sends with the same Message-ID, so a message the dead worker had already
 * handed to the relay may arrive twice: SMTP has no idempotency, docs/email.md).
 */
export async function overdueSends(db: Db, now: Date, limit = 500): Promise<string[]> {
  const rows = await db
    .selectFrom('app.scheduled_sends')
    .select('id')
    .where((eb) =>
      eb.or([
        eb.and([eb('state', '=', 'scheduled'), eb('due_at', '<', new Date(now.getTime() - 60_000))]),
        // Claimed by a worker that died mid-send: its job ran again while the claim was fresh, found
        // the send in flight and completed, so nothing else would ever take the send over.
        eb.and([eb('state', '=', 'sending'), eb('claimed_at', '<', new Date(now.getTime() - STALE_CLAIM_MS))]),
      ]),
    )
    .orderBy('due_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

import { CronExpressionParser } from 'cron-parser';
import { sql, type Transaction } from 'kysely';
import type { Database, Db } from '../db/types';
import type { Logger } from '../log/logger';
import type { Queues } from '../queues/producer';
import type { CompiledRuleSet } from '../rules/compile';
import { scheduleZone } from '../rules/journey';
import { runBroadcastPage } from './broadcast-page';
import type { AutomationDeps } from './run-automation';

/**
 * Broadcasts: a campaign with `trigger: {schedule: {cron, timezone}, segment}` reaches the segment's
 * members at each tick. The ticks come from BullMQ job schedulers (one per campaign, upserted by
 * every process that runs the broadcasts queue); a row in PostgreSQL guards each tick, and a keyset
 * cursor over the members, advanced in the same transaction as each page, makes every member enrol
 * once per tick however many scheduler processes run and however often a tick is retried. A page
 * is written with a handful of set-based statements (broadcast-page.ts), and its outbox rows are
 * relayed to Redis in one pipelined round trip while the next page is written.
 *
 * With `person_timezone`, the cron ticks in the earliest zone (UTC+14), when nobody's local time has
 * come yet; each member's journey begins at that wall time in their own zone, up to 26 hours later
 * (engine/rules/journey.ts broadcastStart). Membership is taken at the tick; consent, exit, quiet
 * hours and the frequency cap are checked again when each send is due.
 */

const schedulerId = (campaignId: string) => `broadcast-${campaignId}`;

/** Makes the queue's job schedulers match the rule set's broadcast campaigns. */
export async function syncBroadcastSchedulers(queues: Queues, compiled: CompiledRuleSet, log: Logger): Promise<void> {
  const wanted = new Set<string>();
  for (const campaign of compiled.scheduled) {
    const trigger = campaign.file.trigger;
    if (!('schedule' in trigger)) continue;
    wanted.add(schedulerId(campaign.id));
    await queues.upsertScheduler('broadcasts', schedulerId(campaign.id), { pattern: trigger.schedule.cron, tz: scheduleZone(trigger.schedule) }, 'tick', { campaignId: campaign.id });
  }
  for (const id of await queues.schedulerIds('broadcasts')) {
    if (!wanted.has(id)) await queues.removeScheduler('broadcasts', id);
  }
  log.debug({ broadcasts: [...wanted] }, 'broadcast schedulers in step with the rules');
}

/**
 * The broadcast schedulers the rule set wants that the queue does not have: none, unless Redis lost
 * its data (a flush, a failover to an empty replica, a restore of an old snapshot). Job schedulers
 * live only in Redis, and the upsert above runs at a worker's start and at a rules reload: without a
 * check, a broadcast whose scheduler was lost would never tick again (test/faults/redis-flush.fault.ts).
 */
export async function missingBroadcastSchedulers(queues: Queues, compiled: CompiledRuleSet): Promise<string[]> {
  const have = new Set(await queues.schedulerIds('broadcasts'));
  return compiled.scheduled.filter((c) => 'schedule' in c.file.trigger && !have.has(schedulerId(c.id))).map((c) => schedulerId(c.id));
}

/** The tick a job belongs to: the latest cron occurrence at or before now (a job may start late). */
export function tickOf(cron: string, timezone: string, now: Date): Date {
  return CronExpressionParser.parse(cron, { currentDate: new Date(now.getTime() + 1_000), tz: timezone }).prev().toDate();
}

export interface TickOutcome {
  readonly outcome: 'done' | 'already_done' | 'in_progress' | 'not_a_broadcast';
  readonly tickAt?: Date;
  readonly members: number;
  readonly sends: number;
}

/** Members a page: a page's writes are a handful of statements, so bigger pages mean fewer of them. */
export const BROADCAST_PAGE_SIZE = 2_000;

export async function runBroadcastTick(
  db: Db,
  deps: AutomationDeps,
  campaignId: string,
  now: Date,
  options: {
    pageSize?: number;
    /**
     * After each page's commit, with the outbox rows it wrote (to relay them). It runs while the
     * next page is written (PostgreSQL's work and Redis's overlap); one at a time, in page order,
     * and the tick returns once the last has ended.
     */
    afterPage?: (outboxRows: number) => Promise<void>;
  } = {},
): Promise<TickOutcome> {
  const campaign = deps.compiled.campaigns.get(campaignId);
  const trigger = campaign?.file.trigger;
  if (!campaign || !trigger || !('schedule' in trigger)) return { outcome: 'not_a_broadcast', members: 0, sends: 0 };
  const tickAt = tickOf(trigger.schedule.cron, scheduleZone(trigger.schedule), now);
  await db
    .insertInto('app.broadcast_ticks')
    .values({ campaign_id: campaignId, tick_at: tickAt, campaign_version: campaign.version, cursor: null, finished_at: null })
    .onConflict((oc) => oc.columns(['campaign_id', 'tick_at']).doNothing())
    .execute();
  const pageSize = options.pageSize ?? BROADCAST_PAGE_SIZE;
  let members = 0;
  let sends = 0;
  let outcome: TickOutcome['outcome'];
  // The relay of the page before, running while this page is written; its failure is the tick's.
  let relaying: Promise<void> = Promise.resolve();
  let relayFailed: { err: unknown } | undefined;
  try {
    for (;;) {
      const page = await db.transaction().execute((trx) => tickPage(trx, deps, campaignId, trigger.segment, tickAt, pageSize, now));
      if (page === 'in_progress') {
        outcome = members > 0 ? 'done' : 'in_progress';
        break;
      }
      if (page === 'finished') {
        outcome = members > 0 || sends > 0 ? 'done' : 'already_done';
        break;
      }
      members += page.members;
      sends += page.sends;
      const afterPage = options.afterPage;
      if (afterPage) {
        // At most one relay runs, beside the next page: the one before ends first.
        await relaying;
        // Every row the page wrote, not one a send: a journey with a wait of its own has a wake-up too.
        if (!relayFailed) {
          relaying = afterPage(page.outboxRows).catch((err: unknown) => {
            relayFailed = { err };
          });
        }
      }
    }
  } finally {
    // Also when a page failed: the pages before it are committed, and their relay ends first.
    await relaying;
  }
  if (relayFailed) throw relayFailed.err;
  return { outcome, tickAt, members, sends };
}

/** One page, in its own transaction: the tick row (locked), the next members after its cursor, their enrolments, the cursor moved on. */
async function tickPage(
  trx: Transaction<Database>,
  deps: AutomationDeps,
  campaignId: string,
  segmentId: string,
  tickAt: Date,
  pageSize: number,
  now: Date,
): Promise<'in_progress' | 'finished' | { members: number; sends: number; outboxRows: number }> {
  // The row is the tick's lock: another process working on it makes this one step aside.
  const tick = await sql<{ cursor: string | null; finished_at: Date | null }>`
    select cursor, finished_at from app.broadcast_ticks where campaign_id = ${campaignId} and tick_at = ${tickAt}
    for update skip locked`.execute(trx);
  const row = tick.rows[0];
  if (!row) return 'in_progress';
  if (row.finished_at) return 'finished';
  const next = await trx
    .selectFrom('app.segment_state')
    .select('profile_id')
    .where('segment_id', '=', segmentId)
    .where('member', '=', true)
    .$if(row.cursor !== null, (q) => q.where('profile_id', '>', row.cursor as string))
    .orderBy('profile_id')
    .limit(pageSize)
    .execute();
  if (next.length === 0) {
    await trx.updateTable('app.broadcast_ticks').set({ finished_at: new Date() }).where('campaign_id', '=', campaignId).where('tick_at', '=', tickAt).execute();
    return 'finished';
  }
  const ids = next.map((r) => r.profile_id);
  const outcome = await runBroadcastPage(trx, deps, campaignId, tickAt, ids, now);
  await sql`update app.broadcast_ticks set cursor = ${ids[ids.length - 1]}, members = members + ${ids.length}
    where campaign_id = ${campaignId} and tick_at = ${tickAt}`.execute(trx);
  return { members: ids.length, sends: outcome.sends, outboxRows: outcome.outboxWritten };
}

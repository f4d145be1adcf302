import { CronExpressionParser } from 'cron-parser';
import { sql } from 'kysely';
import type { Db } from '../db/types';
import type { Logger } from '../log/logger';
import type { Queues } from '../queues/producer';
import type { CompiledRuleSet } from '../rules/compile';
import { scheduleZone } from '../rules/journey';
import { type AutomationDeps, runBroadcastPage } from './run-automation';

/**
 * Broadcasts: a campaign with `trigger: {schedule: {cron, timezone}, segment}` reaches the segment's
 * members at each tick. The ticks come from BullMQ job schedulers (one per campaign, upserted by
 * every process that runs the broadcasts queue); a row in PostgreSQL guards each tick, and a keyset
 * cursor over the members, advanced in the same transaction as each page, makes every member enrol
 * once per tick however many scheduler processes run and however often a tick is retried.
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

export async function runBroadcastTick(
  db: Db,
  deps: AutomationDeps,
  campaignId: string,
  now: Date,
  options: { pageSize?: number; /** After each page's commit, with the outbox rows it wrote (to relay them). */ afterPage?: (outboxRows: number) => Promise<void> } = {},
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
  const pageSize = options.pageSize ?? 500;
  let members = 0;
  let sends = 0;
  for (;;) {
    const page = await db.transaction().execute(async (trx) => {
      // The row is the tick's lock: another process working on it makes this one step aside.
      const tick = await sql<{ cursor: string | null; finished_at: Date | null }>`
        select cursor, finished_at from app.broadcast_ticks where campaign_id = ${campaignId} and tick_at = ${tickAt}
        for update skip locked`.execute(trx);
      const row = tick.rows[0];
      if (!row) return 'in_progress' as const;
      if (row.finished_at) return 'finished' as const;
      const next = await trx
        .selectFrom('app.segment_state')
        .select('profile_id')
        .where('segment_id', '=', trigger.segment)
        .where('member', '=', true)
        .$if(row.cursor !== null, (q) => q.where('profile_id', '>', row.cursor as string))
        .orderBy('profile_id')
        .limit(pageSize)
        .execute();
      if (next.length === 0) {
        await trx.updateTable('app.broadcast_ticks').set({ finished_at: new Date() }).where('campaign_id', '=', campaignId).where('tick_at', '=', tickAt).execute();
        return 'finished' as const;
      }
      const ids = next.map((r) => r.profile_id);
      const outcome = await runBroadcastPage(trx, deps, campaignId, tickAt, ids, now);
      await sql`update app.broadcast_ticks set cursor = ${ids[ids.length - 1]}, members = members + ${ids.length}
        where campaign_id = ${campaignId} and tick_at = ${tickAt}`.execute(trx);
      return { members: ids.length, sends: outcome.sends, outboxRows: outcome.outboxWritten };
    });
    if (page === 'in_progress') return { outcome: members > 0 ? 'done' : 'in_progress', tickAt, members, sends };
    if (page === 'finished') return { outcome: members > 0 || sends > 0 ? 'done' : 'already_done', tickAt, members, sends };
    members += page.members;
    sends += page.sends;
    // A send and a journey wake-up a member: relay every row the page wrote, not one a send.
    await options.afterPage?.(page.outboxRows);
  }
}

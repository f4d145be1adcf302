import { type RawBuilder, sql } from 'kysely';
import { type CampaignReport, type CampaignStepReport, SKIP_REASONS, type SkipReason } from '../../schemas/campaign-report';
import type { Db, DbOrTrx } from '../db/types';
import { EMAIL_TRACKING_SOURCE } from '../email/tracking';
import { type CompiledCampaign, stepPathKey, walkSteps } from '../rules/compile';
import { describeEventMatch } from '../rules/conditions';

/**
 * What a campaign did, in counts: set-based SQL over enrolments, sends, decisions, events and the
 * consent ledger, one statement a table whatever the number of people. Never a person-level row:
 * a marketer sees how many, never who (GDPR Art. 5(1)(c), 25(2)). Skip reasons are grouped into
 * codes in SQL, since their text can carry a time (a frequency cap names the instant it counted to).
 */

/** The skip reason texts (engine/email/send-claim.ts, send-step.ts, engine/rules/journey.ts) → their code. */
function skipReasonCode(reason: RawBuilder<unknown>): RawBuilder<SkipReason> {
  return sql<SkipReason>`case
    when ${reason} like 'no consent%' then 'no_consent'
    when ${reason} like 'frequency cap%' then 'frequency_cap'
    when ${reason} like 'the journey %' then 'journey_ended'
    when ${reason} like 'the address is suppressed%' then 'suppressed'
    when ${reason} like 'no email address%' then 'no_address'
    when ${reason} like 'no template%' then 'no_template'
    when ${reason} like 'the campaign is no longer%' then 'campaign_removed'
    when ${reason} like 'the profile no longer%' then 'profile_gone'
    else 'other' end`;
}

/** A permanent refusal by the relay (send-step.ts writes it so); other failures never reached it. */
const BOUNCE_PREFIX = 'refused by the relay:%';
/** The unsubscribe's ledger reference (engine/consent/unsubscribe.ts): `… of send <uuid>`. */
const UNSUBSCRIBE_SEND = ' of send ([0-9a-f-]{36})$';

interface StepCounts {
  scheduled: number;
  pending: number;
  sent: number;
  cancelled: number;
  bounced: number;
  failed: number;
  opened: number;
  clicked: number;
  unsubscribed: number;
  skippedByReason: Partial<Record<SkipReason, number>>;
}

const emptyCounts = (): StepCounts => ({ scheduled: 0, pending: 0, sent: 0, cancelled: 0, bounced: 0, failed: 0, opened: 0, clicked: 0, unsubscribed: 0, skippedByReason: {} });

/** The send steps of the running file, in the order they run (branches depth first). */
function sendSteps(campaign: CompiledCampaign | undefined): Array<{ step: string; template: string }> {
  const steps: Array<{ step: string; template: string }> = [];
  if (!campaign) return steps;
  walkSteps(campaign.file.steps, (step, path) => {
    if ('send' in step) steps.push({ step: step.id ?? stepPathKey(path), template: step.send.template });
  });
  return steps;
}

/** Whether anything was ever recorded for the campaign id (a campaign that left the rule set still has a report). */
export async function campaignHasHistory(db: DbOrTrx, campaignId: string): Promise<boolean> {
  const { rows } = await sql<{ known: boolean }>`select exists (select 1 from app.enrolments where campaign_id = ${campaignId}) as known`.execute(db);
  return rows[0]?.known === true;
}

/** The report read in one snapshot (repeatable read, read only): its counts agree with each other. */
export function campaignReportSnapshot(db: Db, campaignId: string, campaign: CompiledCampaign | undefined, now = new Date()): Promise<CampaignReport> {
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute((trx) => buildCampaignReport(trx, campaignId, campaign, now));
}

export async function buildCampaignReport(db: DbOrTrx, campaignId: string, campaign: CompiledCampaign | undefined, now = new Date()): Promise<CampaignReport> {
  // Opens and clicks come after the first send was written: the bound lets PostgreSQL skip older event partitions.
  const first = await sql<{ at: Date | null }>`select min(created_at) as at from app.scheduled_sends where campaign_id = ${campaignId}`.execute(db);
  // An hour of slack: the send's time is the database's clock, the event's the process's.
  const since = first.rows[0]?.at ? new Date(new Date(first.rows[0].at).getTime() - 3_600_000) : null;
  const [enrolments, sends, skipsAtSchedule, tracked, unsubscribed, templates] = await Promise.all([
    sql<{ state: string; n: number; people: number }>`
      select coalesce(state, 'all') as state, count(*)::int as n, count(distinct profile_id)::int as people
      from app.enrolments where campaign_id = ${campaignId} group by rollup (state)`.execute(db),
    sql<{ step_id: string; state: string; kind: string; n: number }>`
      select step_id, state,
        case when state = 'skipped' then ${skipReasonCode(sql`state_reason`)}
             when state = 'failed' and state_reason like ${BOUNCE_PREFIX} then 'bounced'
             else '' end as kind,
        count(*)::int as n
      from app.scheduled_sends where campaign_id = ${campaignId} group by 1, 2, 3`.execute(db),
    // A send step skipped when it came up (a frequency cap): no send was written, the decision says so.
    sql<{ step_id: string; kind: SkipReason; n: number }>`
      select ref->>'step' as step_id, ${skipReasonCode(sql`reason`)} as kind, count(*)::int as n
      from app.decisions where rule_id = ${campaignId} and outcome = 'step_skipped' and ref ? 'step' group by 1, 2`.execute(db),
    // Opens and clicks are the engine's own events (engine/email/tracking.ts), one a send at most counted.
    since === null
      ? { rows: [] as Array<{ step_id: string; name: string; n: number }> }
      : sql<{ step_id: string; name: string; n: number }>`
      select s.step_id, e.name, count(distinct s.id)::int as n
      from app.events e join app.scheduled_sends s on s.id::text = e.properties->>'send_id'
      where e.occurred_at >= ${since} and e.source_id = ${EMAIL_TRACKING_SOURCE} and e.type = 'track' and e.name in ('Email Opened', 'Email Clicked')
        and e.properties->>'campaign' = ${campaignId} and s.campaign_id = ${campaignId}
      group by 1, 2`.execute(db),
    sql<{ step_id: string; n: number }>`
      select s.step_id, count(distinct s.id)::int as n
      from app.consent_ledger l join app.scheduled_sends s on s.id::text = substring(l.source_ref from ${UNSUBSCRIBE_SEND})
      where l.source_kind = 'email_link' and l.decision = 'withdrawn' and s.campaign_id = ${campaignId}
      group by 1`.execute(db),
    sql<{ step_id: string; template: string }>`
      select distinct on (step_id) step_id, template from app.scheduled_sends where campaign_id = ${campaignId} order by step_id, created_at desc`.execute(db),
  ]);

  const byStep = new Map<string, StepCounts>();
  const counts = (step: string) => {
    let c = byStep.get(step);
    if (!c) byStep.set(step, (c = emptyCounts()));
    return c;
  };
  for (const { step } of sendSteps(campaign)) counts(step);
  for (const r of sends.rows) {
    const c = counts(r.step_id);
    c.scheduled += r.n;
    if (r.state === 'scheduled' || r.state === 'sending') c.pending += r.n;
    else if (r.state === 'sent') c.sent += r.n;
    else if (r.state === 'cancelled') c.cancelled += r.n;
    else if (r.state === 'failed') c[r.kind === 'bounced' ? 'bounced' : 'failed'] += r.n;
    else if (r.state === 'skipped') {
      const reason = r.kind as SkipReason;
      c.skippedByReason[reason] = (c.skippedByReason[reason] ?? 0) + r.n;
    }
  }
  for (const r of skipsAtSchedule.rows) {
    const c = counts(r.step_id);
    c.skippedByReason[r.kind] = (c.skippedByReason[r.kind] ?? 0) + r.n;
  }
  for (const r of tracked.rows) counts(r.step_id)[r.name === 'Email Opened' ? 'opened' : 'clicked'] += r.n;
  for (const r of unsubscribed.rows) counts(r.step_id).unsubscribed += r.n;

  const inFile = new Map(sendSteps(campaign).map((s) => [s.step, s.template]));
  const stored = new Map(templates.rows.map((r) => [r.step_id, r.template]));
  const steps: CampaignStepReport[] = [...byStep.entries()].map(([step, c]) => {
    const skippedByReason: Partial<Record<SkipReason, number>> = Object.fromEntries(SKIP_REASONS.filter((r) => (c.skippedByReason[r] ?? 0) > 0).map((r) => [r, c.skippedByReason[r] as number]));
    return {
      step,
      template: inFile.get(step) ?? stored.get(step) ?? null,
      inRuleSet: inFile.has(step),
      scheduled: c.scheduled,
      pending: c.pending,
      sent: c.sent,
      skipped: Object.values(skippedByReason).reduce((a: number, b) => a + (b ?? 0), 0),
      skippedByReason,
      cancelled: c.cancelled,
      bounced: c.bounced,
      failed: c.failed,
      opened: c.opened,
      clicked: c.clicked,
      unsubscribed: c.unsubscribed,
    };
  });

  const state = (name: string) => enrolments.rows.find((r) => r.state === name);
  const total = state('all')?.n ?? 0;
  return {
    campaign: { id: campaignId, name: campaign?.file.name ?? null, version: campaign?.version ?? null, inRuleSet: campaign !== undefined },
    generatedAt: now.toISOString(),
    enrolments: {
      total,
      people: state('all')?.people ?? 0,
      active: state('active')?.n ?? 0,
      completed: state('completed')?.n ?? 0,
      exited: state('exited')?.n ?? 0,
      ended: state('ended')?.n ?? 0,
    },
    steps,
    goal: await goalOf(db, campaignId, campaign, total),
  };
}

/**
 * Conversions on the exit goal: journeys that ended because the exit event came (or the exit
 * condition started holding), as engine/rules/evaluate.ts words it, not those a withdrawal ended.
 */
async function goalOf(db: DbOrTrx, campaignId: string, campaign: CompiledCampaign | undefined, enrolled: number): Promise<CampaignReport['goal']> {
  const exit = campaign?.file.exit;
  if (!exit) return null;
  const kind = exit.event ? 'event' : 'condition';
  const prefix = exit.event ? 'exit event %' : 'exit condition:%';
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from app.enrolments where campaign_id = ${campaignId} and state = 'exited' and finish_reason like ${prefix}`.execute(db);
  const conversions = rows[0]?.n ?? 0;
  return {
    kind,
    description: exit.event ? describeEventMatch(exit.event) : 'the exit condition holds',
    conversions,
    rate: enrolled === 0 ? 0 : Math.min(1, conversions / enrolled),
  };
}

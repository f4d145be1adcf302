import { sql } from 'kysely';
import type { Decision } from '../consent/decisions';
import { lockProfileRows } from '../db/profile-locks';
import type { DbOrTrx } from '../db/types';
import { type AnyOutboxEntry, addToOutbox } from '../outbox/outbox';
import type { CompiledCampaign } from '../rules/compile';
import type { ProfileSnapshot } from '../rules/conditions';
import { type TriggerDecision, triggeredCampaigns } from '../rules/evaluate';
import { advance, broadcastStart, type BroadcastStart, type JourneyResult, startJourney, waitsForItsSend } from '../rules/journey';
import { campaignDecision } from './campaign-decision';
import { insertDecisions } from './decision-rows';
import { insertedSend, insertSends, saveSegmentChanges, type SegmentChange, type SendRow, sendJob, setTrait, wakeJob } from './journey-writes';
import { broadcastEnrolmentsOf, type StoredEnrolment } from './journeys-store';
import { type AutomationDeps, type AutomationOutcome, capLookbackMs } from './run-automation';
import { loadSnapshots, recentSends } from './snapshots';

/**
 * One page of a broadcast tick's members, set-based, in the caller's transaction (the one that
 * advances the tick's cursor). What each member's journey does when it starts is pure
 * (engine/rules): it is worked out for the whole page first, then written with a statement for
 * all the enrolments (each inserted with the state its start leaves it in), one for the sends,
 * one for their outbox rows and one for the decisions, instead of five a member.
 *
 * The guarantees stay those of the per-person path: the profile rows are locked first, as every
 * path that acts on a person does; the unique (campaign, person, entry) enrols a member once however
 * many processes run the tick (a member another process just enrolled gets a skip decision, nothing
 * else); each send's outbox row is written in the same transaction as the send. Consent, exit,
 * quiet hours and the frequency cap are checked again when each send is due (engine/email/send-claim.ts).
 */

/** A member's start, worked out before anything is written. */
interface Planned {
  readonly snapshot: ProfileSnapshot;
  readonly campaign: CompiledCampaign;
  readonly decision: TriggerDecision & { entry: number };
  readonly start: BroadcastStart | undefined;
  readonly result: JourneyResult;
}

type Step = { readonly skip: Decision } | { readonly planned: Planned };

/** When the journey waits until, as applyJourney stores it: the last wake-up, while it is not over. */
function wakeOf(result: JourneyResult): Date | null {
  if (!result.state) return null;
  let at: Date | null = null;
  for (const a of result.actions) if (a.kind === 'wake') at = a.at;
  return at;
}

const enrolmentKey = (campaignId: string, profileId: string, entry: number) => `${campaignId} ${profileId} ${entry}`;

export async function runBroadcastPage(db: DbOrTrx, deps: AutomationDeps, campaignId: string, tickAt: Date, profileIds: readonly string[], now: Date): Promise<AutomationOutcome> {
  // Read once: a reload in the middle of a page does not mix two rule sets.
  const { compiled, catalog } = deps;
  const outcome: AutomationOutcome = { enrolled: 0, skipped: 0, exited: 0, sends: 0, segmentsEntered: 0, segmentsLeft: 0, journeysWoken: 0, outboxWritten: 0 };
  if (profileIds.length === 0) return outcome;
  await lockProfileRows(db, profileIds);
  // Sends across campaigns count only towards this campaign's own frequency cap, if it has one.
  const capped = compiled.campaigns.get(campaignId)?.file.limits.frequency_cap !== undefined;
  const [snapshots, enrolments, sends] = await Promise.all([
    loadSnapshots(db, compiled, profileIds, now),
    broadcastEnrolmentsOf(db, campaignId, profileIds),
    capped ? recentSends(db, profileIds, new Date(now.getTime() - capLookbackMs(compiled))) : new Map<string, Date[]>(),
  ]);
  const page = { deps: { compiled, catalog }, campaignId, tickAt, now, trigger: { trigger: `schedule:${tickAt.toISOString()}` } };
  const steps = plan(page, profileIds, snapshots, enrolments, sends);

  const planned = steps.flatMap((s) => ('planned' in s ? [s.planned] : []));
  const ids = await insertStarted(db, planned, compiled.version, now);
  const sendRows: SendRow[] = [];
  for (const p of planned) {
    const id = ids.get(enrolmentKey(p.campaign.id, p.snapshot.profileId, p.decision.entry));
    if (id === undefined) continue;
    for (const action of p.result.actions) {
      if (action.kind === 'send') sendRows.push({ enrolmentId: id, profileId: p.snapshot.profileId, campaignId: p.campaign.id, action });
    }
  }
  const inserted = await insertSends(db, sendRows);

  const jobs: AnyOutboxEntry[] = [];
  const segmentChanges: SegmentChange[] = [];
  const decisions: Decision[] = [];
  const ref = (extra: Record<string, unknown>) => ({ ruleSet: compiled.version, ...extra });
  for (const step of steps) {
    if ('skip' in step) {
      outcome.skipped++;
      decisions.push(step.skip);
      continue;
    }
    const { snapshot, campaign, decision: d, start, result } = step.planned;
    const profileId = snapshot.profileId;
    const id = ids.get(enrolmentKey(campaign.id, profileId, d.entry));
    const decide = (outcomeName: string, allowed: boolean, reason: string, extra: Record<string, unknown>) =>
      decisions.push(campaignDecision(profileId, campaign.id, campaign, outcomeName, allowed, reason, ref(extra)));
    if (id === undefined) {
      outcome.skipped++;
      decide('skip', false, `already enrolled: entry ${d.entry} was just started by another worker`, page.trigger);
      continue;
    }
    outcome.enrolled++;
    decide('enrol', true, start ? `${d.reason} ${start.reason}` : d.reason, { ...page.trigger, entry: d.entry, ...(start ? { start: start.at.toISOString(), zone: start.zone } : {}) });
    for (const a of result.actions) {
      if (a.kind === 'send') {
        const sendId = insertedSend(inserted, id, a.stepId);
        if (sendId === undefined) continue;
        outcome.sends++;
        jobs.push(sendJob(sendId, a.at));
        decide('step_scheduled', true, a.reason ?? `send ${a.template} at ${a.at.toISOString()}`, { step: a.stepId, entry: d.entry, at: a.at.toISOString() });
      } else if (a.kind === 'skip') {
        decide('step_skipped', false, a.reason, { step: a.stepId, entry: d.entry });
      } else if (a.kind === 'set_trait') {
        // Rare in a broadcast: a statement each, as the per-person path does.
        await setTrait(db, profileId, campaign.id, a, now);
      } else if (a.kind === 'add_to_segment' || a.kind === 'remove_from_segment') {
        segmentChanges.push({ profileId, segmentId: a.segmentId, member: a.kind === 'add_to_segment' });
      } else if (a.kind === 'finished') {
        decide(a.how, true, a.reason, { entry: d.entry });
      }
    }
    // A journey waiting for its own send needs no job of its own (journeys-store.ts applyJourney).
    const wakeAt = wakeOf(result);
    if (wakeAt && !waitsForItsSend(campaign, result.state)) jobs.push(wakeJob(id, wakeAt));
  }
  await saveSegmentChanges(db, segmentChanges, now);
  await addToOutbox(db, jobs);
  await insertDecisions(db, decisions);
  outcome.outboxWritten = jobs.length;
  return outcome;
}

interface Page {
  readonly deps: AutomationDeps;
  readonly campaignId: string;
  readonly tickAt: Date;
  readonly now: Date;
  readonly trigger: { readonly trigger: string };
}

/**
 * Who is enrolled and what each journey does when it starts, pure: the broadcast's decision for
 * each member (consent, segment, limits), and for those enrolled, the start in their zone.
 */
function plan(
  page: Page,
  profileIds: readonly string[],
  snapshots: ReadonlyMap<string, ProfileSnapshot>,
  enrolments: ReadonlyMap<string, readonly StoredEnrolment[]>,
  sends: ReadonlyMap<string, readonly Date[]>,
): Step[] {
  const { compiled, catalog } = page.deps;
  const { campaignId, tickAt, now } = page;
  const schedule = compiled.campaigns.get(campaignId)?.file.trigger;
  // Members of one zone start at one instant: worked out once a zone.
  const starts = new Map<string, BroadcastStart | undefined>();
  const startIn = (zone: string | undefined) => {
    if (!schedule || !('schedule' in schedule)) return undefined;
    const key = zone ?? '';
    if (!starts.has(key)) starts.set(key, broadcastStart(schedule.schedule, tickAt, zone, now));
    return starts.get(key);
  };
  const steps: Step[] = [];
  for (const profileId of profileIds) {
    const snapshot = snapshots.get(profileId);
    if (!snapshot) continue;
    const mine = enrolments.get(profileId) ?? [];
    const start = startIn(snapshot.timezone);
    // An entry of an earlier tick that begins at or after this tick (the member's zone is far behind
    // and the cron ticks more often than the zones span) is an earlier issue still to go out, not a
    // journey this one would run into: it does not keep the member out (compared with the tick, not
    // the clock, so it does not depend on whether that wake-up ran first).
    const seen = start ? mine.map((e) => (e.campaignId === campaignId && e.active && e.journey && e.journey.startedAt >= tickAt ? { ...e, active: false } : e)) : mine;
    for (const d of triggeredCampaigns(compiled, { kind: 'schedule', campaignId }, snapshot, seen, now, catalog)) {
      const campaign = compiled.campaigns.get(d.campaignId);
      if (d.outcome === 'skip' || !campaign || d.entry === undefined) {
        steps.push({ skip: campaignDecision(profileId, d.campaignId, campaign, 'skip', false, d.reason, { ruleSet: compiled.version, ...page.trigger }) });
        continue;
      }
      // The enrolment starts now (limits compare tick with tick); its steps at the member's time.
      const at = start?.at ?? now;
      const sendTimes = sends.get(profileId) ?? [];
      const context = { catalog, sendsInWindow: (_channel: 'email', since: Date) => sendTimes.filter((t) => t >= since).length };
      const result = advance(campaign, startJourney(campaign.id, d.entry, at), { kind: 'start', at, ...(start ? { now } : {}) }, snapshot, context);
      steps.push({ planned: { snapshot, campaign, decision: { ...d, entry: d.entry }, start, result } });
    }
  }
  return steps;
}

/** The page's enrolments, one statement, each as its start left it; returns the ids of those inserted, by `campaign person entry`. */
async function insertStarted(db: DbOrTrx, planned: readonly Planned[], ruleSetVersion: string, now: Date): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (planned.length === 0) return out;
  const rows = planned.map((p) => {
    const finished = p.result.actions.find((a) => a.kind === 'finished');
    return {
      c: p.campaign.id,
      p: p.snapshot.profileId,
      e: p.decision.entry,
      cv: p.campaign.version,
      s: finished?.how ?? 'active',
      j: p.result.state,
      w: wakeOf(p.result),
      f: finished ? now : null,
      r: finished?.reason ?? null,
    };
  });
  // A journey over at its start stores the JSON null, as applyJourney does (the column is not null).
  const result = await sql<{ id: string; campaign_id: string; profile_id: string; entry: number }>`
    insert into app.enrolments (campaign_id, profile_id, entry, campaign_version, rule_set_version, state, journey, started_at, wake_at, finished_at, finish_reason)
    select c, p, e, cv, ${ruleSetVersion}, s, coalesce(j, 'null'::jsonb), ${now}, w, f, r
    from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as v(c text, p uuid, e int, cv text, s text, j jsonb, w timestamptz, f timestamptz, r text)
    on conflict (campaign_id, profile_id, entry) do nothing
    returning id, campaign_id, profile_id, entry`.execute(db);
  for (const r of result.rows) out.set(enrolmentKey(r.campaign_id, r.profile_id, r.entry), r.id);
  return out;
}

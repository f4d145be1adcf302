import type { DbOrTrx } from '../db/types';
import type { PurposeCatalog } from '../consent/purposes';
import type { CompiledCampaign, CompiledRuleSet } from '../rules/compile';
import type { ProfileSnapshot, SnapshotEvent } from '../rules/conditions';
import { evaluateSegments, exitsFor, type TriggerDecision, triggeredCampaigns } from '../rules/evaluate';
import { advance, type JourneyContext, type JourneyInput, startJourney } from '../rules/journey';
import { applyJourney, claimDueEnrolments, enrolmentsOf, exitEnrolment, insertEnrolment, type StoredEnrolment } from './journeys-store';
import { claimDueRechecks, saveSegmentStates } from './segment-state';
import { loadSnapshots, recentSends } from './snapshots';

/**
 * The rules at work on real data, inside the caller's transaction: for each person touched, exits,
 * journeys waiting for an event, event triggers, then segments (and the campaigns their changes
 * trigger). Every trigger that matched records a decision with the rule's id, version and reason.
 * The evaluation itself is pure (engine/rules); this file only reads state and writes outcomes.
 */

export interface AutomationDeps {
  readonly compiled: CompiledRuleSet;
  readonly catalog: PurposeCatalog;
}

export interface AutomationInput {
  readonly profileId: string;
  /** The person's events of this batch that may trigger rules (none carrying a browser privacy signal). */
  readonly events: readonly SnapshotEvent[];
}

export interface AutomationOutcome {
  enrolled: number;
  skipped: number;
  exited: number;
  sends: number;
  segmentsEntered: number;
  segmentsLeft: number;
}

const FREQUENCY_LOOKBACK_MS = 31 * 24 * 60 * 60 * 1000;

interface DecisionRow {
  profile_id: string;
  action: string;
  allowed: boolean;
  reason: string;
  purposes: string[];
  missing: string[];
  ref: string;
  rule_id: string;
  rule_version: string | null;
  outcome: string;
}

class Run {
  readonly outcome: AutomationOutcome = { enrolled: 0, skipped: 0, exited: 0, sends: 0, segmentsEntered: 0, segmentsLeft: 0 };
  readonly decisions: DecisionRow[] = [];
  constructor(
    private readonly db: DbOrTrx,
    private readonly deps: AutomationDeps,
    private readonly now: Date,
  ) {}

  decision(profileId: string, campaign: CompiledCampaign | undefined, campaignId: string, outcome: string, allowed: boolean, reason: string, ref: Record<string, unknown> = {}) {
    this.decisions.push({
      profile_id: profileId,
      action: `campaign:${campaignId}:${outcome === 'enrol' || outcome === 'skip' ? 'enrol' : outcome}`,
      allowed,
      reason,
      purposes: campaign ? [...campaign.file.purposes] : [],
      missing: [],
      ref: JSON.stringify({ ruleSet: this.deps.compiled.version, ...ref }),
      rule_id: campaignId,
      rule_version: campaign?.version ?? null,
      outcome,
    });
  }

  context(sendTimes: Date[]): JourneyContext {
    return { catalog: this.deps.catalog, sendsInWindow: (_channel, since) => sendTimes.filter((t) => t >= since).length };
  }

  async journey(snapshot: ProfileSnapshot, enrolment: StoredEnrolment, input: JourneyInput, sendTimes: Date[]): Promise<void> {
    const campaign = this.deps.compiled.campaigns.get(enrolment.campaignId);
    if (!campaign || !enrolment.journey) return;
    const result = advance(campaign, enrolment.journey, input, snapshot, this.context(sendTimes));
    if (result.actions.length === 0 && result.state === enrolment.journey) return;
    const applied = await applyJourney(this.db, { id: enrolment.id, profileId: snapshot.profileId, campaignId: campaign.id }, result.state, result.actions, this.now);
    this.outcome.sends += applied.sends;
    for (const a of result.actions) if (a.kind === 'send') sendTimes.push(a.at);
    for (const s of applied.skips) this.decision(snapshot.profileId, campaign, campaign.id, 'step_skipped', false, s.reason, { step: s.stepId, entry: enrolment.entry });
    for (const a of result.actions) {
      if (a.kind === 'send') {
        this.decision(snapshot.profileId, campaign, campaign.id, 'step_scheduled', true, a.reason ?? `send ${a.template} at ${a.at.toISOString()}`, {
          step: a.stepId,
          entry: enrolment.entry,
          at: a.at.toISOString(),
        });
      }
    }
    if (applied.finished) this.decision(snapshot.profileId, campaign, campaign.id, applied.finished.how, true, applied.finished.reason, { entry: enrolment.entry });
  }

  async enrol(snapshot: ProfileSnapshot, d: TriggerDecision, enrolments: StoredEnrolment[], sendTimes: Date[], trigger: Record<string, unknown>): Promise<void> {
    const campaign = this.deps.compiled.campaigns.get(d.campaignId);
    if (d.outcome === 'skip' || !campaign || d.entry === undefined) {
      this.outcome.skipped++;
      this.decision(snapshot.profileId, campaign, d.campaignId, 'skip', false, d.reason, trigger);
      return;
    }
    const journey = startJourney(campaign.id, d.entry, this.now);
    const id = await insertEnrolment(this.db, {
      campaignId: campaign.id,
      profileId: snapshot.profileId,
      entry: d.entry,
      campaignVersion: campaign.version,
      ruleSetVersion: this.deps.compiled.version,
      journey,
      startedAt: this.now,
    });
    if (!id) {
      this.outcome.skipped++;
      this.decision(snapshot.profileId, campaign, campaign.id, 'skip', false, `already enrolled: entry ${d.entry} was just started by another worker`, trigger);
      return;
    }
    this.outcome.enrolled++;
    this.decision(snapshot.profileId, campaign, campaign.id, 'enrol', true, d.reason, { ...trigger, entry: d.entry });
    const stored: StoredEnrolment = { id, profileId: snapshot.profileId, campaignId: campaign.id, entry: d.entry, startedAt: this.now, active: true, state: 'active', journey };
    enrolments.push(stored);
    await this.journey(snapshot, stored, { kind: 'start', at: this.now }, sendTimes);
  }

  async exits(snapshot: ProfileSnapshot, event: SnapshotEvent | null, enrolments: StoredEnrolment[]): Promise<void> {
    const active = enrolments.filter((e) => e.active);
    if (active.length === 0) return;
    for (const exit of exitsFor(this.deps.compiled, event, snapshot, new Set(active.map((e) => e.campaignId)), this.now, this.deps.catalog)) {
      for (const e of active.filter((a) => a.campaignId === exit.campaignId)) {
        const cancelled = await exitEnrolment(this.db, e.id, exit.reason, this.now);
        (e as { active: boolean }).active = false;
        this.outcome.exited++;
        this.decision(snapshot.profileId, this.deps.compiled.campaigns.get(exit.campaignId), exit.campaignId, 'exited', true, exit.reason, {
          entry: e.entry,
          by: exit.by,
          cancelledSends: cancelled,
        });
      }
    }
  }

  async flush(): Promise<void> {
    if (this.decisions.length > 0) await this.db.insertInto('app.decisions').values(this.decisions).execute();
  }
}

export async function runAutomation(db: DbOrTrx, deps: AutomationDeps, inputs: readonly AutomationInput[], now: Date): Promise<AutomationOutcome> {
  const profileIds = [...new Set(inputs.map((i) => i.profileId))];
  const run = new Run(db, deps, now);
  if (profileIds.length === 0) return run.outcome;
  const [snapshots, enrolments, sends] = await Promise.all([
    loadSnapshots(db, deps.compiled, profileIds, now),
    enrolmentsOf(db, profileIds),
    recentSends(db, profileIds, new Date(now.getTime() - FREQUENCY_LOOKBACK_MS)),
  ]);
  const eventsOf = new Map<string, SnapshotEvent[]>();
  for (const input of inputs) eventsOf.set(input.profileId, [...(eventsOf.get(input.profileId) ?? []), ...input.events]);

  for (const profileId of profileIds) {
    let snapshot = snapshots.get(profileId);
    if (!snapshot) continue; // merged away or erased meanwhile
    const mine = enrolments.get(profileId) ?? [];
    const sendTimes = sends.get(profileId) ?? [];
    for (const event of eventsOf.get(profileId) ?? []) {
      await run.exits(snapshot, event, mine);
      for (const e of mine.filter((x) => x.active && x.journey?.waiting?.kind === 'wait_until')) {
        await run.journey(snapshot, e, { kind: 'event', at: event.occurredAt, event }, sendTimes);
      }
      for (const d of triggeredCampaigns(deps.compiled, { kind: 'event', event }, snapshot, mine, now, deps.catalog)) {
        await run.enrol(snapshot, d, mine, sendTimes, { trigger: `event:${event.type}:${event.name ?? ''}` });
      }
    }
    const evaluated = evaluateSegments(deps.compiled, snapshot, now, deps.catalog);
    await saveSegmentStates(
      db,
      evaluated.map((s) => ({ profileId, segmentId: s.segmentId, member: s.member, changedAt: now, recheckAt: s.nextChangeAt })),
    );
    const members = new Set(snapshot.segments);
    for (const s of evaluated) {
      if (s.member) members.add(s.segmentId);
      else members.delete(s.segmentId);
    }
    snapshot = { ...snapshot, segments: members };
    for (const s of evaluated) {
      if (!s.changed) continue;
      if (s.changed === 'entered') run.outcome.segmentsEntered++;
      else run.outcome.segmentsLeft++;
      for (const d of triggeredCampaigns(deps.compiled, { kind: 'segment', segmentId: s.segmentId, change: s.changed }, snapshot, mine, now, deps.catalog)) {
        await run.enrol(snapshot, d, mine, sendTimes, { trigger: `segment_${s.changed}:${s.segmentId}`, because: s.reason });
      }
    }
    await run.exits(snapshot, null, mine);
  }
  await run.flush();
  return run.outcome;
}

/**
 * Work that comes due with time alone: journeys whose wait is over, and segment memberships whose
 * window slid. Claimed with SKIP LOCKED, so several workers share it; cost grows with what is due.
 */
export async function runDueAutomation(db: DbOrTrx, deps: AutomationDeps, now: Date, limit = 500): Promise<AutomationOutcome & { journeysWoken: number; rechecked: number }> {
  const due = await claimDueEnrolments(db, now, limit);
  const run = new Run(db, deps, now);
  if (due.length > 0) {
    const ids = [...new Set(due.map((e) => e.profileId))];
    const [snapshots, sends] = await Promise.all([loadSnapshots(db, deps.compiled, ids, now), recentSends(db, ids, new Date(now.getTime() - FREQUENCY_LOOKBACK_MS))]);
    for (const enrolment of due) {
      const snapshot = snapshots.get(enrolment.profileId);
      if (snapshot) await run.journey(snapshot, enrolment, { kind: 'timer', at: now }, sends.get(enrolment.profileId) ?? []);
    }
    await run.flush();
  }
  const rechecks = await claimDueRechecks(db, now, limit);
  const rechecked = await runAutomation(db, deps, rechecks.map((profileId) => ({ profileId, events: [] })), now);
  return {
    ...rechecked,
    sends: rechecked.sends + run.outcome.sends,
    journeysWoken: due.length,
    rechecked: rechecks.length,
  };
}

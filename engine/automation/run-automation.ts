import { durationMs } from '../../schemas/rules/conditions';
import { type Decision, recordDecisions } from '../consent/decisions';
import type { ConsentState } from '../consent/gate';
import type { PurposeCatalog } from '../consent/purposes';
import { lockProfileRows } from '../db/profile-locks';
import type { DbOrTrx } from '../db/types';
import type { CompiledCampaign, CompiledRuleSet } from '../rules/compile';
import type { ProfileSnapshot, SnapshotEvent } from '../rules/conditions';
import { evaluateSegments, exitsFor, type TriggerDecision, triggeredCampaigns } from '../rules/evaluate';
import { advance, type JourneyContext, type JourneyInput, startJourney, waitsForItsSend } from '../rules/journey';
import { campaignDecision } from './campaign-decision';
import {
  applyJourney,
  claimDueProfiles,
  enrolmentsOf,
  exitEnrolment,
  insertEnrolment,
  retireDueWorkOf,
  type StoredEnrolment,
} from './journeys-store';
import { clearStaleRechecks, saveSegmentStates, type SegmentStateRow } from './segment-state';
import { loadSnapshots, recentSends } from './snapshots';

/**
 * The rules at work on real data, inside the caller's transaction. For each person: exits and
 * journeys waiting for each event, event triggers, journeys whose wait is over, then segments and
 * the campaigns their changes trigger. Every trigger that matched records a decision with the
 * rule's id, version and reason. The evaluation is pure (engine/rules); this file reads state and
 * writes outcomes. Every path locks the person's profile row first, so a batch, the tick and a
 * consent change never act on one person at once.
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
  journeysWoken: number;
  /** Wake-ups and sends written to the outbox: relay it after the commit. */
  outboxWritten: number;
}

const DEFAULT_LOOKBACK_MS = 31 * 24 * 60 * 60 * 1000;
/** How far back sends count for frequency caps: the longest cap in the set. */
export function capLookbackMs(compiled: CompiledRuleSet): number {
  let longest = DEFAULT_LOOKBACK_MS;
  for (const c of compiled.campaigns.values()) {
    const per = c.file.limits.frequency_cap?.per;
    if (per) longest = Math.max(longest, durationMs(per));
  }
  return longest;
}

class Run {
  readonly outcome: AutomationOutcome = { enrolled: 0, skipped: 0, exited: 0, sends: 0, segmentsEntered: 0, segmentsLeft: 0, journeysWoken: 0, outboxWritten: 0 };
  private readonly decisions: Decision[] = [];
  private readonly segmentRows: SegmentStateRow[] = [];
  private readonly evaluatedProfiles: string[] = [];

  /** `deps` is read once: a reload in the middle of a run does not mix two rule sets. */
  constructor(
    private readonly db: DbOrTrx,
    private readonly deps: AutomationDeps,
    private readonly now: Date,
  ) {}

  private decision(profileId: string, campaign: CompiledCampaign | undefined, campaignId: string, outcome: string, allowed: boolean, reason: string, ref: Record<string, unknown> = {}) {
    this.decisions.push(campaignDecision(profileId, campaignId, campaign, outcome, allowed, reason, { ruleSet: this.deps.compiled.version, ...ref }));
  }

  private context(sendTimes: Date[]): JourneyContext {
    return { catalog: this.deps.catalog, sendsInWindow: (_channel, since) => sendTimes.filter((t) => t >= since).length };
  }

  private async journey(snapshot: ProfileSnapshot, enrolment: StoredEnrolment, input: JourneyInput, sendTimes: Date[]): Promise<void> {
    const campaign = this.deps.compiled.campaigns.get(enrolment.campaignId);
    if (!campaign || !enrolment.journey || !enrolment.active) return;
    const result = advance(campaign, enrolment.journey, input, snapshot, this.context(sendTimes));
    if (result.actions.length === 0 && result.state === enrolment.journey) return;
    const applied = await applyJourney(this.db, { id: enrolment.id, profileId: snapshot.profileId, campaignId: campaign.id }, result.state, result.actions, this.now, {
      wakeJob: !waitsForItsSend(campaign, result.state),
    });
    // Kept current, so a second event of the same batch sees where the journey is now.
    enrolment.journey = result.state;
    enrolment.wakeAt = result.actions.reduce<Date | null>((at, a) => (a.kind === 'wake' ? a.at : at), null);
    if (applied.finished || result.state === null) {
      enrolment.active = false;
      enrolment.state = applied.finished?.how ?? 'completed';
    }
    this.outcome.sends += applied.sendTimes.length;
    this.outcome.outboxWritten += applied.outboxRows;
    sendTimes.push(...applied.sendTimes);
    for (const s of applied.skips) this.decision(snapshot.profileId, campaign, campaign.id, 'step_skipped', false, s.reason, { step: s.stepId, entry: enrolment.entry });
    for (const a of result.actions) {
      if (a.kind !== 'send' || !applied.sendTimes.includes(a.at)) continue;
      this.decision(snapshot.profileId, campaign, campaign.id, 'step_scheduled', true, a.reason ?? `send ${a.template} at ${a.at.toISOString()}`, {
        step: a.stepId,
        entry: enrolment.entry,
        at: a.at.toISOString(),
      });
    }
    if (applied.finished) this.decision(snapshot.profileId, campaign, campaign.id, applied.finished.how, true, applied.finished.reason, { entry: enrolment.entry });
  }

  /** Enrols the person (unless consent or limits say no) and starts the journey now. */
  private async enrol(snapshot: ProfileSnapshot, d: TriggerDecision, enrolments: StoredEnrolment[], sendTimes: Date[], trigger: Record<string, unknown>): Promise<void> {
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
    const stored: StoredEnrolment = { id, profileId: snapshot.profileId, campaignId: campaign.id, entry: d.entry, startedAt: this.now, active: true, state: 'active', journey, wakeAt: null };
    enrolments.push(stored);
    await this.journey(snapshot, stored, { kind: 'start', at: this.now }, sendTimes);
  }

  private async exits(snapshot: ProfileSnapshot, event: SnapshotEvent | null, enrolments: readonly StoredEnrolment[]): Promise<void> {
    const active = enrolments.filter((e) => e.active);
    if (active.length === 0) return;
    for (const exit of exitsFor(this.deps.compiled, event, snapshot, new Set(active.map((e) => e.campaignId)), this.now, this.deps.catalog)) {
      for (const e of active.filter((a) => a.campaignId === exit.campaignId)) {
        const cancelled = await exitEnrolment(this.db, e.id, exit.reason, this.now);
        e.active = false;
        e.state = 'exited';
        if (cancelled === undefined) continue;
        this.outcome.exited++;
        this.decision(snapshot.profileId, this.deps.compiled.campaigns.get(exit.campaignId), exit.campaignId, 'exited', true, exit.reason, {
          entry: e.entry,
          by: exit.by,
          cancelledSends: cancelled,
        });
      }
    }
  }

  /** Everything the rules do for one person, given the events that arrived and the time now. */
  async person(snapshotIn: ProfileSnapshot, events: readonly SnapshotEvent[], mine: StoredEnrolment[], sendTimes: Date[]): Promise<void> {
    let snapshot = snapshotIn;
    const { compiled, catalog } = this.deps;
    for (const event of events) {
      await this.exits(snapshot, event, mine);
      for (const e of mine.filter((x) => x.active && x.journey?.waiting?.kind === 'wait_until')) {
        await this.journey(snapshot, e, { kind: 'event', at: event.occurredAt, event }, sendTimes);
      }
      for (const d of triggeredCampaigns(compiled, { kind: 'event', event }, snapshot, mine, this.now, catalog)) {
        await this.enrol(snapshot, d, mine, sendTimes, { trigger: `event:${event.type}:${event.name ?? ''}` });
      }
    }
    // Journeys whose wait is over: consent and exit conditions are checked first, at the moment of action.
    const due = mine.filter((e) => e.active && e.wakeAt !== null && e.wakeAt <= this.now);
    if (due.length > 0) {
      await this.exits(snapshot, null, due);
      for (const e of due) {
        if (!e.active) continue;
        this.outcome.journeysWoken++;
        await this.journey(snapshot, e, { kind: 'timer', at: this.now }, sendTimes);
      }
    }
    const evaluated = evaluateSegments(compiled, snapshot, this.now, catalog);
    this.evaluatedProfiles.push(snapshot.profileId);
    const members = new Set(snapshot.segments);
    for (const s of evaluated) {
      this.segmentRows.push({ profileId: snapshot.profileId, segmentId: s.segmentId, member: s.member, changedAt: this.now, recheckAt: s.nextChangeAt });
      if (s.member) members.add(s.segmentId);
      else members.delete(s.segmentId);
    }
    snapshot = { ...snapshot, segments: members };
    for (const s of evaluated) {
      if (!s.changed) continue;
      if (s.changed === 'entered') this.outcome.segmentsEntered++;
      else this.outcome.segmentsLeft++;
      for (const d of triggeredCampaigns(compiled, { kind: 'segment', segmentId: s.segmentId, change: s.changed }, snapshot, mine, this.now, catalog)) {
        await this.enrol(snapshot, d, mine, sendTimes, { trigger: `segment_${s.changed}:${s.segmentId}`, because: s.reason });
      }
    }
    await this.exits(snapshot, null, mine);
  }

  async flush(clearStale: boolean): Promise<void> {
    await saveSegmentStates(this.db, this.segmentRows);
    // Only the tick claims due rechecks, so only it needs stale ones cleared (one query less per batch).
    if (clearStale) {
      await clearStaleRechecks(
        this.db,
        this.evaluatedProfiles,
        this.deps.compiled.segments.filter((s) => s.condition !== null).map((s) => s.id),
        this.now,
      );
    }
    await recordDecisions(this.db, this.decisions);
  }
}

async function runFor(
  db: DbOrTrx,
  deps: AutomationDeps,
  profileIds: readonly string[],
  eventsOf: ReadonlyMap<string, readonly SnapshotEvent[]>,
  now: Date,
  tick: boolean,
  consent?: ReadonlyMap<string, ConsentState>,
): Promise<AutomationOutcome> {
  const run = new Run(db, deps, now);
  if (profileIds.length === 0) return run.outcome;
  const [snapshots, enrolments, sends] = await Promise.all([
    loadSnapshots(db, deps.compiled, profileIds, now, consent),
    enrolmentsOf(db, profileIds),
    recentSends(db, profileIds, new Date(now.getTime() - capLookbackMs(deps.compiled))),
  ]);
  const gone = profileIds.filter((id) => !snapshots.has(id));
  await retireDueWorkOf(db, gone, now);
  for (const profileId of profileIds) {
    const snapshot = snapshots.get(profileId);
    if (!snapshot) continue;
    await run.person(snapshot, eventsOf.get(profileId) ?? [], enrolments.get(profileId) ?? [], sends.get(profileId) ?? []);
  }
  await run.flush(tick);
  return run.outcome;
}

/** The rules for the people of a batch (or of a consent change), in the caller's transaction. */
export interface RunOptions {
  /** The caller's transaction holds the profile rows already (a batch, which upserted them). */
  readonly profilesLocked?: boolean;
  /** The people's current consent, when the caller has just read it in this transaction (a batch). */
  readonly consent?: ReadonlyMap<string, ConsentState>;
}

export async function runAutomation(
  db: DbOrTrx,
  deps: AutomationDeps,
  inputs: readonly AutomationInput[],
  now: Date,
  options: RunOptions = {},
): Promise<AutomationOutcome> {
  const fixed: AutomationDeps = { compiled: deps.compiled, catalog: deps.catalog };
  const profileIds = [...new Set(inputs.map((i) => i.profileId))].sort();
  if (!options.profilesLocked) await lockProfileRows(db, profileIds);
  const eventsOf = new Map<string, SnapshotEvent[]>();
  for (const input of inputs) eventsOf.set(input.profileId, [...(eventsOf.get(input.profileId) ?? []), ...input.events]);
  return runFor(db, fixed, profileIds, eventsOf, now, false, options.consent);
}

/**
 * Work that comes due with time alone: journeys whose wait is over, and segment memberships whose
 * window slid. Whole people are claimed (their profile row, SKIP LOCKED), so several workers share
 * the work and none races a batch for the same person; cost grows with what is due.
 */
export async function runDueAutomation(db: DbOrTrx, deps: AutomationDeps, now: Date, limit = 200): Promise<AutomationOutcome & { profiles: number }> {
  const fixed: AutomationDeps = { compiled: deps.compiled, catalog: deps.catalog };
  const { locked, gone } = await claimDueProfiles(db, now, limit);
  await retireDueWorkOf(db, gone, now);
  const outcome = await runFor(db, fixed, locked, new Map(), now, true);
  return { ...outcome, profiles: locked.length + gone.length };
}

/** A journey wake-up job: that person's due journeys (and segments), now. */
export async function runWake(db: DbOrTrx, deps: AutomationDeps, enrolmentId: string, now: Date): Promise<AutomationOutcome | undefined> {
  const fixed: AutomationDeps = { compiled: deps.compiled, catalog: deps.catalog };
  const enrolment = await db.selectFrom('app.enrolments').select(['profile_id', 'state']).where('id', '=', enrolmentId).executeTakeFirst();
  if (!enrolment || enrolment.state !== 'active') return undefined;
  await lockProfileRows(db, [enrolment.profile_id]);
  return runFor(db, fixed, [enrolment.profile_id], new Map(), now, true);
}

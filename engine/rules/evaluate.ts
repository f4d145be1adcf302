import { durationMs } from '../../schemas/rules/conditions';
import { decide, type GateDecision } from '../consent/gate';
import type { PurposeCatalog } from '../consent/purposes';
import type { CompiledCampaign, CompiledRuleSet } from './compile';
import { describeEventMatch, type ProfileSnapshot, type SnapshotEvent } from './conditions';

/**
 * Decisions for one person at one moment, each with its reason: segment memberships, which
 * campaigns an event or a segment change enrols them in (or why not), and which journeys end. Pure:
 * the caller records the decisions and acts on them.
 */

export interface SegmentEvaluation {
  readonly segmentId: string;
  readonly member: boolean;
  readonly changed: 'entered' | 'left' | null;
  /** When to evaluate again with no new event (a window sliding), or null. */
  readonly nextChangeAt: Date | null;
  readonly reason: string;
}

const BUILD_SEGMENTS = { capability: 'build_segments' } as const;
const BEHAVIOURAL_TRIGGERS = { capability: 'behavioural_triggers' } as const;

function earlier(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a <= b ? a : b;
}

/**
 * Condition-based segments in dependency order, each seeing the results before it. A segment that
 * profiles (traits, behaviour) has nobody in it without a purpose allowing it (GDPR Art. 21(2)); one
 * on consent alone is the list of people who agreed, and needs nothing more.
 */
export function evaluateSegments(
  compiled: CompiledRuleSet,
  snapshot: ProfileSnapshot,
  now: Date,
  catalog: PurposeCatalog,
): SegmentEvaluation[] {
  const gate = decide(catalog, snapshot.consent, BUILD_SEGMENTS);
  const memberships = new Set(snapshot.segments);
  const working: ProfileSnapshot = { ...snapshot, segments: memberships };
  const nextChanges = new Map<string, Date | null>();
  const out: SegmentEvaluation[] = [];
  for (const segment of compiled.segments) {
    if (!segment.condition) continue;
    const was = snapshot.segments.has(segment.id);
    let member = false;
    let nextChangeAt: Date | null = null;
    let reason: string;
    if (segment.profiling && !gate.allowed) {
      reason = `no consent to build segments: ${gate.reason}`;
    } else {
      const r = segment.condition(working, now, catalog);
      member = r.value;
      reason = r.reason;
      // A segment it refers to may change on its own schedule, and this one with it.
      nextChangeAt = segment.dependsOn.reduce((at, dep) => earlier(at, nextChanges.get(dep) ?? null), r.nextChangeAt);
    }
    nextChanges.set(segment.id, nextChangeAt);
    if (member) memberships.add(segment.id);
    else memberships.delete(segment.id);
    const changed = member === was ? null : member ? 'entered' : 'left';
    out.push({ segmentId: segment.id, member, changed, nextChangeAt, reason });
  }
  return out;
}

export type CampaignTrigger =
  | { readonly kind: 'event'; readonly event: SnapshotEvent }
  | { readonly kind: 'segment'; readonly segmentId: string; readonly change: 'entered' | 'left' }
  /** A broadcast tick of a schedule-triggered campaign, for one member of its segment. */
  | { readonly kind: 'schedule'; readonly campaignId: string };

export interface Enrolment {
  readonly campaignId: string;
  readonly entry: number;
  readonly startedAt: Date;
  readonly active: boolean;
}

export interface TriggerDecision {
  readonly campaignId: string;
  /** The campaign file's hash. */
  readonly campaignVersion: string;
  readonly outcome: 'enrol' | 'skip';
  /** The new entry number (1 for the first) when enrolling. */
  readonly entry?: number;
  readonly reason: string;
}

function refusal(what: string, gate: GateDecision): string {
  const purposes = gate.missing.map((m) => m.purpose).join(', ');
  return `no consent for ${what || purposes}: ${gate.reason}`;
}

function candidates(compiled: CompiledRuleSet, trigger: CampaignTrigger): readonly CompiledCampaign[] {
  switch (trigger.kind) {
    case 'event':
      return compiled.campaignsForEvent(trigger.event.type, trigger.event.name).filter((c) => c.triggerMatches?.(trigger.event) === true);
    case 'segment':
      return compiled.campaignsForSegmentChange(trigger.segmentId, trigger.change);
    case 'schedule': {
      const campaign = compiled.campaigns.get(trigger.campaignId);
      return campaign && campaign.triggerKind === 'schedule' ? [campaign] : [];
    }
  }
}

function describeTrigger(campaign: CompiledCampaign): string {
  const trigger = campaign.file.trigger;
  if ('event' in trigger) return `event ${describeEventMatch(trigger.event)}`;
  if ('segment_entered' in trigger) return `entered segment ${trigger.segment_entered}`;
  if ('segment_left' in trigger) return `left segment ${trigger.segment_left}`;
  return `broadcast to segment ${trigger.segment}`;
}

/** Why a new entry is not allowed now, or undefined. */
function limitRefusal(campaign: CompiledCampaign, previous: readonly Enrolment[], now: Date): string | undefined {
  const active = previous.find((e) => e.active);
  if (active) return `already enrolled: entry ${active.entry} active since ${active.startedAt.toISOString()}`;
  const last = previous.reduce<Enrolment | undefined>((a, e) => (a === undefined || e.startedAt > a.startedAt ? e : a), undefined);
  if (!last) return undefined;
  const limits = campaign.file.limits;
  if (limits.reenter_after !== undefined) {
    const notBefore = new Date(last.startedAt.getTime() + durationMs(limits.reenter_after));
    if (now < notBefore) return `re-entry not before ${notBefore.toISOString()} (entry ${last.entry} started ${last.startedAt.toISOString()}, reenter_after ${limits.reenter_after})`;
    return undefined;
  }
  // A broadcast reaches its members at every tick; once per person limits journeys, not issues of a digest.
  if (limits.once_per_person && campaign.triggerKind !== 'schedule') {
    return `already enrolled once (entry ${last.entry} on ${last.startedAt.toISOString()}); once_per_person`;
  }
  return undefined;
}

/** The consent gate for one person at one moment, each distinct question asked once: campaigns share purposes. */
function gateFor(catalog: PurposeCatalog, snapshot: ProfileSnapshot) {
  const byPurposes = new Map<string, GateDecision>();
  let behavioural: GateDecision | undefined;
  return {
    purposes(purposes: readonly string[]): GateDecision {
      const key = purposes.join('\u0000');
      let decision = byPurposes.get(key);
      if (!decision) byPurposes.set(key, (decision = decide(catalog, snapshot.consent, { purposes })));
      return decision;
    },
    behavioural(): GateDecision {
      behavioural ??= decide(catalog, snapshot.consent, BEHAVIOURAL_TRIGGERS);
      return behavioural;
    },
  };
}

/**
 * Each campaign the trigger can start, enrolled or skipped with the reason. Checked in this order:
 * consent to the campaign's purposes and, for a journey started by what the person does, to
 * behavioural triggers (GDPR Art. 6(1)(a), 21(2)); membership for a broadcast; limits; conditions.
 */
export function triggeredCampaigns(
  compiled: CompiledRuleSet,
  trigger: CampaignTrigger,
  snapshot: ProfileSnapshot,
  enrolments: ReadonlyArray<Enrolment>,
  now: Date,
  catalog: PurposeCatalog,
): TriggerDecision[] {
  const decisions: TriggerDecision[] = [];
  const gate = gateFor(catalog, snapshot);
  for (const campaign of candidates(compiled, trigger)) {
    const skip = (reason: string) => decisions.push({ campaignId: campaign.id, campaignVersion: campaign.version, outcome: 'skip', reason });
    const purposes = gate.purposes(campaign.file.purposes);
    if (!purposes.allowed) {
      skip(refusal('', purposes));
      continue;
    }
    if (campaign.behavioural) {
      const behavioural = gate.behavioural();
      if (!behavioural.allowed) {
        skip(refusal('behavioural triggers', behavioural));
        continue;
      }
    }
    const trig = campaign.file.trigger;
    if ('schedule' in trig && !snapshot.segments.has(trig.segment)) {
      skip(`not in segment ${trig.segment}`);
      continue;
    }
    const previous = enrolments.filter((e) => e.campaignId === campaign.id);
    const limited = limitRefusal(campaign, previous, now);
    if (limited) {
      skip(limited);
      continue;
    }
    let because = describeTrigger(campaign);
    if (campaign.conditions) {
      const r = campaign.conditions(snapshot, now, catalog);
      if (!r.value) {
        skip(`condition false: ${r.reason}`);
        continue;
      }
      because += `; ${r.reason}`;
    }
    const entry = previous.reduce((max, e) => Math.max(max, e.entry), 0) + 1;
    decisions.push({ campaignId: campaign.id, campaignVersion: campaign.version, outcome: 'enrol', entry, reason: because });
  }
  return decisions;
}

export interface ExitDecision {
  readonly campaignId: string;
  readonly campaignVersion: string | null;
  readonly by: 'event' | 'condition' | 'consent' | 'removed';
  readonly reason: string;
}

/**
 * The active journeys that end now: on their exit event or condition, or because the consent they
 * run under is gone (a withdrawal wins over anything scheduled: DESIGN.md invariant 2), or because
 * a reload removed their campaign.
 */
export function exitsFor(
  compiled: CompiledRuleSet,
  event: SnapshotEvent | null,
  snapshot: ProfileSnapshot,
  activeCampaignIds: Iterable<string>,
  now: Date,
  catalog: PurposeCatalog,
): ExitDecision[] {
  const exits: ExitDecision[] = [];
  const gate = gateFor(catalog, snapshot);
  for (const campaignId of activeCampaignIds) {
    const campaign = compiled.campaigns.get(campaignId);
    if (!campaign) {
      exits.push({ campaignId, campaignVersion: null, by: 'removed', reason: 'the campaign is no longer in the rule set' });
      continue;
    }
    const exit = (by: ExitDecision['by'], reason: string) => exits.push({ campaignId, campaignVersion: campaign.version, by, reason });
    if (event && campaign.exitEvent?.(event)) {
      const match = campaign.file.exit?.event;
      exit('event', `exit event ${match ? describeEventMatch(match) : event.type}`);
      continue;
    }
    if (campaign.exitCondition) {
      const r = campaign.exitCondition(snapshot, now, catalog);
      if (r.value) {
        exit('condition', `exit condition: ${r.reason}`);
        continue;
      }
    }
    const purposes = gate.purposes(campaign.file.purposes);
    if (!purposes.allowed) {
      exit('consent', refusal('', purposes));
      continue;
    }
    if (campaign.behavioural) {
      const behavioural = gate.behavioural();
      if (!behavioural.allowed) exit('consent', refusal('behavioural triggers', behavioural));
    }
  }
  return exits;
}

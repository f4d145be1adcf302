import type { CampaignFile, Step } from '../../schemas/rules/campaign-file';
import { type Condition, durationMs } from '../../schemas/rules/conditions';
import type { EventType } from '../../schemas/segment';
import { type CompiledCondition, compileCondition, compileEventMatch, type EventMatcher } from './conditions';
import type { RuleSet } from './rule-set';

/**
 * A loaded rule set compiled once: conditions into predicates, segments into dependency order, and
 * campaigns indexed by what can trigger or end them, so an event costs only the rules it can touch
 * (DESIGN.md, performance model). Pure.
 */

/** A step's place: `[2, 'then', 0]` is `steps[2].branch.then[0]`. */
export type StepPath = ReadonlyArray<number | 'then' | 'else'>;

/** `steps.2.then.0`: how a step without an id is named in decisions and output. */
export function stepPathKey(path: StepPath): string {
  return ['steps', ...path].join('.');
}

export interface CompiledSegment {
  readonly id: string;
  /** SHA-256 of its file. */
  readonly version: string;
  readonly path: string;
  readonly manual: boolean;
  readonly condition: CompiledCondition | null;
  /** The segments its condition refers to (in_segment). */
  readonly dependsOn: readonly string[];
  /**
   * Whether membership evaluates personal aspects (GDPR Art. 4(4)): traits, behaviour, last seen, a
   * manual segment filled by campaigns, or a segment that is. Such a segment needs a purpose allowing
   * build_segments; one on consent alone (`newsletter_subscribers`) is a list, not a profile.
   */
  readonly profiling: boolean;
}

export type TriggerKind = 'event' | 'segment_entered' | 'segment_left' | 'schedule';

export interface CompiledCampaign {
  readonly id: string;
  /** SHA-256 of its file: the version decisions point at. */
  readonly version: string;
  readonly path: string;
  readonly file: CampaignFile;
  readonly triggerKind: TriggerKind;
  /** The event trigger with its property filters; null for other triggers. */
  readonly triggerMatches: EventMatcher | null;
  /** Started by what the person does (an event, a segment change): needs a purpose allowing behavioural_triggers. */
  readonly behavioural: boolean;
  readonly conditions: CompiledCondition | null;
  readonly exitEvent: EventMatcher | null;
  readonly exitCondition: CompiledCondition | null;
  /** Branch conditions by step path key (`steps.2`). */
  readonly branches: ReadonlyMap<string, CompiledCondition>;
  /** wait_until event matches by step path key. */
  readonly waits: ReadonlyMap<string, EventMatcher>;
}

export interface EventNeed {
  readonly type: EventType;
  /** null: every event of the type. */
  readonly name: string | null;
  /** How far back from now events are needed. */
  readonly windowMs: number;
}

export interface RuleNeeds {
  /** The events behaviour conditions count and wait_until steps wait for, each with the longest window needed. */
  readonly events: readonly EventNeed[];
  readonly maxWindowMs: number;
  /** How far back events of this type and name are needed, or null when no rule looks at them. */
  windowFor(type: EventType, name: string | null): number | null;
}

export interface CompiledRuleSet {
  readonly ruleSet: RuleSet;
  /** The whole set's version (RuleSet.version). */
  readonly version: string;
  /** Condition-based and manual segments, each after the segments it refers to. */
  readonly segments: readonly CompiledSegment[];
  readonly segmentById: ReadonlyMap<string, CompiledSegment>;
  readonly campaigns: ReadonlyMap<string, CompiledCampaign>;
  /** Campaigns triggered by a schedule (broadcasts). */
  readonly scheduled: readonly CompiledCampaign[];
  readonly needs: RuleNeeds;
  /** Campaigns whose event trigger can match an event of this type and name (property filters still to check). */
  campaignsForEvent(type: EventType, name: string | null): readonly CompiledCampaign[];
  campaignsForSegmentChange(segmentId: string, change: 'entered' | 'left'): readonly CompiledCampaign[];
  /** Campaigns whose exit event can match (property filters still to check). */
  campaignsExitingOn(type: EventType, name: string | null): readonly CompiledCampaign[];
  /** Campaigns with a wait_until step that can match. */
  campaignsWaitingFor(type: EventType, name: string | null): readonly CompiledCampaign[];
}

const NONE: readonly never[] = Object.freeze([]);
const eventKey = (type: string, name: string) => `${type}\u0000${name}`;

/** Items by (type, name), with those for any name of a type merged into every named list of it. */
class EventIndex<T> {
  private readonly named = new Map<string, T[]>();
  private readonly anyName = new Map<string, T[]>();
  private merged: Map<string, readonly T[]> | undefined;

  add(type: string, name: string | undefined, item: T): void {
    const map = name === undefined ? this.anyName : this.named;
    const key = name === undefined ? type : eventKey(type, name);
    const list = map.get(key) ?? [];
    if (!list.includes(item)) list.push(item);
    map.set(key, list);
  }

  freeze(): void {
    this.merged = new Map();
    for (const [key, list] of this.named) {
      const type = key.slice(0, key.indexOf('\u0000'));
      this.merged.set(key, Object.freeze([...list, ...(this.anyName.get(type) ?? [])]));
    }
  }

  get(type: string, name: string | null): readonly T[] {
    if (name !== null) {
      const hit = this.merged?.get(eventKey(type, name));
      if (hit) return hit;
    }
    return this.anyName.get(type) ?? NONE;
  }
}

/** Calls `visit` for every leaf condition, through all, any and not. */
function walkCondition(condition: Condition, visit: (leaf: Condition) => void): void {
  if ('all' in condition) for (const c of condition.all) walkCondition(c, visit);
  else if ('any' in condition) for (const c of condition.any) walkCondition(c, visit);
  else if ('not' in condition) walkCondition(condition.not, visit);
  else visit(condition);
}

/** Calls `visit` for every step with its path, depth first in the order they run. */
export function walkSteps(steps: readonly Step[], visit: (step: Step, path: StepPath) => void, prefix: StepPath = []): void {
  steps.forEach((step, index) => {
    const path = [...prefix, index];
    visit(step, path);
    if ('branch' in step) {
      walkSteps(step.branch.then, visit, [...path, 'then']);
      walkSteps(step.branch.else, visit, [...path, 'else']);
    }
  });
}

class NeedsCollector {
  private readonly windows = new Map<string, EventNeed>();

  add(type: EventType, name: string | undefined, windowMs: number): void {
    const key = name === undefined ? type : eventKey(type, name);
    const previous = this.windows.get(key);
    if (!previous || previous.windowMs < windowMs) this.windows.set(key, { type, name: name ?? null, windowMs });
  }

  addCondition(condition: Condition | undefined): void {
    if (!condition) return;
    walkCondition(condition, (leaf) => {
      if ('events' in leaf) this.add(leaf.events.type, leaf.events.name, durationMs(leaf.events.within));
    });
  }

  build(): RuleNeeds {
    const events = Object.freeze([...this.windows.values()]);
    const windows = new Map(this.windows);
    const maxWindowMs = events.reduce((max, e) => Math.max(max, e.windowMs), 0);
    return {
      events,
      maxWindowMs,
      windowFor(type, name) {
        const any = windows.get(type)?.windowMs;
        const named = name === null ? undefined : windows.get(eventKey(type, name))?.windowMs;
        if (any === undefined) return named ?? null;
        return named === undefined ? any : Math.max(any, named);
      },
    };
  }
}

/** Leaves that look at personal aspects; consent and membership alone do not. */
function looksAtPersonalAspects(condition: Condition): boolean {
  let found = false;
  walkCondition(condition, (leaf) => {
    if ('trait' in leaf || 'events' in leaf || 'last_seen' in leaf) found = true;
  });
  return found;
}

function segmentRefs(condition: Condition | undefined): string[] {
  const refs = new Set<string>();
  if (condition) walkCondition(condition, (leaf) => 'in_segment' in leaf && refs.add(leaf.in_segment));
  return [...refs];
}

/** Each segment after those it refers to; the loader refuses cycles, so one here is a bug. */
function dependencyOrder(segments: ReadonlyMap<string, CompiledSegment>): CompiledSegment[] {
  const order: CompiledSegment[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, trail: string[]) => {
    const segment = segments.get(id);
    if (!segment || state.get(id) === 'done') return;
    if (state.get(id) === 'visiting') throw new Error(`segments refer to each other in a cycle: ${[...trail, id].join(' → ')}`);
    state.set(id, 'visiting');
    for (const dep of segment.dependsOn) visit(dep, [...trail, id]);
    state.set(id, 'done');
    order.push(segment);
  };
  for (const id of [...segments.keys()].sort()) visit(id, []);
  return order;
}

function compileCampaign(
  file: CampaignFile,
  path: string,
  version: string,
  needs: NeedsCollector,
  segments: ReadonlyMap<string, CompiledSegment>,
): CompiledCampaign {
  const trigger = file.trigger;
  const triggerKind: TriggerKind =
    'event' in trigger ? 'event' : 'segment_entered' in trigger ? 'segment_entered' : 'segment_left' in trigger ? 'segment_left' : 'schedule';
  const branches = new Map<string, CompiledCondition>();
  const waits = new Map<string, EventMatcher>();
  walkSteps(file.steps, (step, stepPath) => {
    if ('branch' in step) {
      branches.set(stepPathKey(stepPath), compileCondition(step.branch.if));
      needs.addCondition(step.branch.if);
    } else if ('wait_until' in step) {
      waits.set(stepPathKey(stepPath), compileEventMatch(step.wait_until.event));
      // A timer that fires after a matching event was stored but before its journey moved on finds it here.
      needs.add(step.wait_until.event.type, step.wait_until.event.name, durationMs(step.wait_until.timeout));
    }
  });
  needs.addCondition(file.conditions);
  needs.addCondition(file.exit?.condition);
  return Object.freeze({
    id: file.id,
    version,
    path,
    file,
    triggerKind,
    triggerMatches: 'event' in trigger ? compileEventMatch(trigger.event) : null,
    // What the person does starts it: an event, or entering or leaving a segment that profiles them.
    behavioural:
      'event' in trigger ||
      ('segment_entered' in trigger && segments.get(trigger.segment_entered)?.profiling !== false) ||
      ('segment_left' in trigger && segments.get(trigger.segment_left)?.profiling !== false),
    conditions: file.conditions ? compileCondition(file.conditions) : null,
    exitEvent: file.exit?.event ? compileEventMatch(file.exit.event) : null,
    exitCondition: file.exit?.condition ? compileCondition(file.exit.condition) : null,
    branches,
    waits,
  });
}

export function compileRuleSet(ruleSet: RuleSet): CompiledRuleSet {
  const needs = new NeedsCollector();
  const segmentById = new Map<string, CompiledSegment>();
  for (const [id, loaded] of ruleSet.segments) {
    const conditions = loaded.file.conditions;
    needs.addCondition(conditions);
    segmentById.set(id, {
      id,
      version: loaded.hash,
      path: loaded.path,
      manual: conditions === undefined,
      condition: conditions ? compileCondition(conditions) : null,
      dependsOn: Object.freeze(segmentRefs(conditions)),
      profiling: conditions === undefined || looksAtPersonalAspects(conditions),
    });
  }
  // A segment built on a profiling segment profiles too; dependencies come first in this order.
  const ordered = dependencyOrder(segmentById);
  for (const segment of ordered) {
    const profiling = segment.profiling || segment.dependsOn.some((dep) => segmentById.get(dep)?.profiling === true);
    segmentById.set(segment.id, Object.freeze({ ...segment, profiling }));
  }

  const campaigns = new Map<string, CompiledCampaign>();
  const byEvent = new EventIndex<CompiledCampaign>();
  const exitsByEvent = new EventIndex<CompiledCampaign>();
  const waitsByEvent = new EventIndex<CompiledCampaign>();
  const bySegmentChange = new Map<string, CompiledCampaign[]>();
  const scheduled: CompiledCampaign[] = [];
  for (const id of [...ruleSet.campaigns.keys()].sort()) {
    const loaded = ruleSet.campaigns.get(id);
    if (!loaded) continue;
    const campaign = compileCampaign(loaded.file, loaded.path, loaded.hash, needs, segmentById);
    campaigns.set(id, campaign);
    const trigger = loaded.file.trigger;
    if ('event' in trigger) byEvent.add(trigger.event.type, trigger.event.name, campaign);
    else if ('schedule' in trigger) scheduled.push(campaign);
    else {
      const key = 'segment_entered' in trigger ? `${trigger.segment_entered}\u0000entered` : `${trigger.segment_left}\u0000left`;
      bySegmentChange.set(key, [...(bySegmentChange.get(key) ?? []), campaign]);
    }
    const exit = loaded.file.exit?.event;
    if (exit) exitsByEvent.add(exit.type, exit.name, campaign);
    walkSteps(loaded.file.steps, (step) => {
      if ('wait_until' in step) waitsByEvent.add(step.wait_until.event.type, step.wait_until.event.name, campaign);
    });
  }
  byEvent.freeze();
  exitsByEvent.freeze();
  waitsByEvent.freeze();

  return Object.freeze({
    ruleSet,
    version: ruleSet.version,
    segments: Object.freeze(ordered.map((segment) => segmentById.get(segment.id) as CompiledSegment)),
    segmentById,
    campaigns,
    scheduled: Object.freeze(scheduled),
    needs: needs.build(),
    campaignsForEvent: (type: EventType, name: string | null) => byEvent.get(type, name),
    campaignsForSegmentChange: (segmentId: string, change: 'entered' | 'left') => bySegmentChange.get(`${segmentId}\u0000${change}`) ?? NONE,
    campaignsExitingOn: (type: EventType, name: string | null) => exitsByEvent.get(type, name),
    campaignsWaitingFor: (type: EventType, name: string | null) => waitsByEvent.get(type, name),
  });
}

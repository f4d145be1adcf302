import { CronExpressionParser } from 'cron-parser';
import type { z } from 'zod';
import { durationMs } from '../../schemas/rules/conditions';
import { type EventType, SegmentEvent } from '../../schemas/segment';
import { decide, type PurposeState } from '../consent/gate';
import type { PurposeCatalog } from '../consent/purposes';
import { CONSENT_EVENT_NAMES } from '../consent/requests';
import { scrubText } from '../privacy/scrub-text';
import { type CompiledCampaign, type CompiledRuleSet, compileRuleSet } from './compile';
import type { ProfileSnapshot, SnapshotEvent } from './conditions';
import { evaluateSegments, exitsFor, type TriggerDecision, triggeredCampaigns } from './evaluate';
import {
  advance,
  type BroadcastStart,
  broadcastStart,
  isTimeZone,
  type JourneyAction,
  type JourneyResult,
  type JourneyState,
  scheduleZone,
  startJourney,
} from './journey';
import type { RuleSet } from './rule-set';

/**
 * `consentflow rules simulate`: replays a log of Segment-format events through a rule set in virtual
 * time, with no database, queue or mail server, and tells per person what would happen and when.
 * It plays the parts of the engine around the pure evaluator as the engine does: the properties
 * policy decides what is stored, consent decides which events are linked to the person, segments are
 * recomputed as windows slide, journeys wake on timers, and each send is checked again when it is due.
 *
 * Simulator conventions: people are keyed by userId, else anonymousId (alias events merge nobody);
 * a `Consent Updated` event's `properties.purposes` {purpose: true|false} grants or withdraws at once
 * (a double opt-in purpose counts as confirmed).
 */

export const SimEvent = SegmentEvent.refine((e) => e.timestamp !== undefined, {
  message: 'expected a timestamp: the time the event happened, e.g. 2026-11-29T10:00:00Z',
  path: ['timestamp'],
});
export type SimEvent = z.infer<typeof SimEvent>;

export type SimEventsParse = { readonly ok: true; readonly events: SimEvent[] } | { readonly ok: false; readonly problems: string[] };

const record = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

function consentProblem(event: SimEvent, catalog: PurposeCatalog): string | undefined {
  if (event.type !== 'track' || !CONSENT_EVENT_NAMES.has(event.event)) return undefined;
  const purposes = record(event.properties?.purposes);
  if (!purposes) return 'properties.purposes: expected an object {"purpose": true | false}';
  for (const [name, value] of Object.entries(purposes)) {
    if (!catalog.get(name)) return `properties.purposes.${name}: unknown purpose; declared in rules/purposes.yaml: ${catalog.names.join(', ')}`;
    if (typeof value !== 'boolean') return `properties.purposes.${name}: expected true or false`;
  }
  return undefined;
}

/** One event per line (blank lines skipped); each problem as `FILE:LINE: message`. */
export function parseSimEvents(text: string, file: string, catalog?: PurposeCatalog): SimEventsParse {
  const events: SimEvent[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (line.trim() === '') return;
    const at = `${file}:${index + 1}`;
    let data: unknown;
    try {
      data = JSON.parse(line);
    } catch (err) {
      problems.push(`${at}: not valid JSON: ${(err as Error).message}`);
      return;
    }
    const parsed = SimEvent.safeParse(data);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => (i.path.length > 0 ? `${i.path.map(String).join('.')}: ${i.message}` : i.message));
      problems.push(`${at}: ${issues.join('; ')}`);
      return;
    }
    const consent = catalog && consentProblem(parsed.data, catalog);
    if (consent) problems.push(`${at}: ${consent}`);
    else events.push(parsed.data);
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, events };
}

// ── the timeline ────────────────────────────────────────────────────────────────────────────────

export type TimelineKind = 'enrolled' | 'skipped' | 'send' | 'deferred' | 'exited' | 'completed' | 'segment_entered' | 'segment_left' | 'trait_set';

export interface TimelineEntry {
  readonly at: Date;
  readonly person: string;
  readonly kind: TimelineKind;
  readonly campaign?: string;
  readonly step?: string;
  readonly template?: string;
  readonly segment?: string;
  readonly reason: string;
}

export interface Timeline {
  /** The rule set's version. */
  readonly version: string;
  readonly from: Date | null;
  readonly until: Date | null;
  /** Everyone the events name, in order of their first event. */
  readonly people: readonly string[];
  /** In time order (stable: what happens at the same moment keeps the order it happened in). */
  readonly entries: readonly TimelineEntry[];
}

export interface SimulateOptions {
  /** Events before it build up history but enrol nobody and appear nowhere; broadcasts tick from it. */
  readonly from?: Date;
  /** Nothing after it is replayed; broadcasts tick until it. */
  readonly until?: Date;
}

// ── virtual time ────────────────────────────────────────────────────────────────────────────────

type Item =
  | { readonly kind: 'event'; readonly event: SimEvent }
  | { readonly kind: 'segments'; readonly person: string }
  | { readonly kind: 'segment_change'; readonly person: string; readonly segmentId: string; readonly change: 'entered' | 'left' }
  | { readonly kind: 'journey'; readonly person: string; readonly campaignId: string; readonly entry: number; readonly generation: number }
  | { readonly kind: 'send'; readonly person: string; readonly send: ScheduledSend }
  | { readonly kind: 'broadcast'; readonly campaignId: string };

interface Queued {
  readonly at: number;
  /** Timers before events at the same moment, so a window closing at T closes before an event at T. */
  readonly rank: 0 | 1;
  readonly seq: number;
  readonly item: Item;
}

const before = (a: Queued, b: Queued) => a.at - b.at || a.rank - b.rank || a.seq - b.seq;

/** A binary min-heap of timers and events. */
class Agenda {
  private readonly heap: Queued[] = [];
  private seq = 0;

  push(at: number, item: Item): void {
    const q: Queued = { at, rank: item.kind === 'event' ? 1 : 0, seq: this.seq++, item };
    const h = this.heap;
    h.push(q);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(h[parent] as Queued, q) <= 0) break;
      h[i] = h[parent] as Queued;
      i = parent;
    }
    h[i] = q;
  }

  peek(): Queued | undefined {
    return this.heap[0];
  }

  pop(): Queued | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && before(h[r] as Queued, h[l] as Queued) < 0 ? r : l;
      if (before(h[child] as Queued, last) >= 0) break;
      h[i] = h[child] as Queued;
      i = child;
    }
    h[i] = last;
    return top;
  }
}

// ── people ──────────────────────────────────────────────────────────────────────────────────────

interface ScheduledSend {
  readonly id: number;
  readonly campaignId: string;
  readonly entry: number;
  readonly stepId: string;
  readonly template: string;
  readonly at: Date;
  readonly deferredFrom?: Date;
  readonly reason?: string;
  status: 'scheduled' | 'sent' | 'skipped' | 'cancelled';
}

interface Journey {
  state: JourneyState;
  generation: number;
}

interface Person {
  readonly key: string;
  readonly traits: Record<string, unknown>;
  readonly consent: Map<string, PurposeState>;
  readonly segments: Set<string>;
  events: SnapshotEvent[];
  lastSeenAt: Date | null;
  readonly enrolments: Array<{ campaignId: string; entry: number; startedAt: Date; active: boolean }>;
  /** By journeyKey: a person runs one journey per campaign, but for issues of a broadcast in each person's zone, which may overlap. */
  readonly journeys: Map<string, Journey>;
  readonly sends: ScheduledSend[];
  /** The pending recompute of segments and exit conditions (ms), if any. */
  recheckAt: number | null;
}

const journeyKey = (campaignId: string, entry: number) => `${campaignId}\u0000${entry}`;

const MAX_STEPS = 1_000_000;
const MAX_TICKS = 10_000;

function traitsOf(event: SimEvent): Record<string, unknown> | undefined {
  return record(event.traits) ?? record(record(event.context)?.traits);
}

function nameOf(event: SimEvent): string | null {
  const raw = event.type === 'track' ? event.event : event.type === 'page' || event.type === 'screen' ? event.name : undefined;
  return typeof raw === 'string' ? scrubText(raw).slice(0, 200) : null;
}

class Simulation {
  private readonly compiled: CompiledRuleSet;
  private readonly catalog: PurposeCatalog;
  private readonly agenda = new Agenda();
  private readonly people = new Map<string, Person>();
  private readonly entries: TimelineEntry[] = [];
  private sendIds = 0;
  private now = 0;

  constructor(
    private readonly ruleSet: RuleSet,
    private readonly options: SimulateOptions,
  ) {
    this.compiled = compileRuleSet(ruleSet);
    this.catalog = ruleSet.purposes;
  }

  run(events: readonly SimEvent[]): Timeline {
    const timed = events.map((event) => ({ event, at: Date.parse(event.timestamp as string) }));
    for (const { event, at } of timed) this.agenda.push(at, { kind: 'event', event });
    this.scheduleBroadcasts(timed.map((t) => t.at));
    const until = this.options.until?.getTime() ?? Infinity;
    let steps = 0;
    for (let next = this.agenda.peek(); next !== undefined && next.at <= until; next = this.agenda.peek()) {
      if (++steps > MAX_STEPS) throw new Error(`the simulation did not settle after ${MAX_STEPS} steps (near ${new Date(next.at).toISOString()})`);
      this.agenda.pop();
      this.now = next.at;
      this.handle(next.item);
    }
    const entries = this.entries.map((e, i) => ({ e, i })).sort((a, b) => a.e.at.getTime() - b.e.at.getTime() || a.i - b.i);
    return {
      version: this.ruleSet.version,
      from: this.options.from ?? null,
      until: this.options.until ?? null,
      people: [...this.people.keys()],
      entries: entries.map(({ e }) => e),
    };
  }

  private scheduleBroadcasts(eventTimes: readonly number[]): void {
    if (this.compiled.scheduled.length === 0) return;
    const first = eventTimes.reduce<number | undefined>((min, t) => (min === undefined || t < min ? t : min), undefined);
    const last = eventTimes.reduce<number | undefined>((max, t) => (max === undefined || t > max ? t : max), undefined);
    const start = this.options.from?.getTime() ?? first;
    const end = this.options.until?.getTime() ?? last;
    if (start === undefined || end === undefined) return;
    for (const campaign of this.compiled.scheduled) {
      const trigger = campaign.file.trigger;
      if (!('schedule' in trigger)) continue;
      const ticks = CronExpressionParser.parse(trigger.schedule.cron, {
        currentDate: new Date(start - 1),
        endDate: new Date(end),
        tz: scheduleZone(trigger.schedule),
      });
      for (let n = 0; n < MAX_TICKS && ticks.hasNext(); n++) this.agenda.push(ticks.next().toDate().getTime(), { kind: 'broadcast', campaignId: campaign.id });
    }
  }

  // ── bookkeeping ──

  private get at(): Date {
    return new Date(this.now);
  }

  private live(): boolean {
    return this.options.from === undefined || this.now >= this.options.from.getTime();
  }

  private record(entry: Omit<TimelineEntry, 'at'>): void {
    if (this.live()) this.entries.push({ at: this.at, ...entry });
  }

  private person(key: string): Person {
    let p = this.people.get(key);
    if (!p) {
      p = { key, traits: {}, consent: new Map(), segments: new Set(), events: [], lastSeenAt: null, enrolments: [], journeys: new Map(), sends: [], recheckAt: null };
      this.people.set(key, p);
    }
    return p;
  }

  private snapshot(p: Person): ProfileSnapshot {
    const horizon = this.now - this.compiled.needs.maxWindowMs;
    if (p.events.length > 0 && (p.events[0] as SnapshotEvent).occurredAt.getTime() <= horizon) {
      p.events = p.events.filter((e) => e.occurredAt.getTime() > horizon);
    }
    const timezone = p.traits.timezone;
    return {
      profileId: p.key,
      traits: p.traits,
      consent: p.consent,
      segments: p.segments,
      events: p.events,
      lastSeenAt: p.lastSeenAt,
      ...(typeof timezone === 'string' && isTimeZone(timezone) ? { timezone } : {}),
    };
  }

  private recheck(p: Person, at: number): void {
    if (p.recheckAt !== null && p.recheckAt <= at && p.recheckAt >= this.now) return;
    p.recheckAt = at;
    this.agenda.push(at, { kind: 'segments', person: p.key });
  }

  private handle(item: Item): void {
    switch (item.kind) {
      case 'event':
        return this.onEvent(item.event);
      case 'segments': {
        const p = this.person(item.person);
        if (p.recheckAt !== this.now) return; // superseded by an earlier recompute
        p.recheckAt = null;
        return this.react(p, null);
      }
      case 'segment_change':
        return this.onSegmentChange(this.person(item.person), item.segmentId, item.change);
      case 'journey': {
        const p = this.person(item.person);
        const journey = p.journeys.get(journeyKey(item.campaignId, item.entry));
        const campaign = this.compiled.campaigns.get(item.campaignId);
        if (!journey || !campaign || journey.generation !== item.generation) return;
        return this.apply(p, campaign, journey, advance(campaign, journey.state, { kind: 'timer', at: this.at }, this.snapshot(p), this.context(p)));
      }
      case 'send':
        return this.deliver(this.person(item.person), item.send);
      case 'broadcast':
        return this.onBroadcast(item.campaignId);
    }
  }

  // ── events ──

  private onEvent(event: SimEvent): void {
    const key = event.userId ?? event.anonymousId;
    if (key === undefined) return; // alias without either: the schema admits it, nobody to key it to
    const p = this.person(key);
    const at = this.at;
    if (event.type === 'track' && CONSENT_EVENT_NAMES.has(event.event)) this.applyConsent(p, event);
    if (event.type === 'identify') Object.assign(p.traits, this.ruleSet.properties.splitTraits(traitsOf(event)).traits);
    if (p.lastSeenAt === null || at > p.lastSeenAt) p.lastSeenAt = at;

    const type = event.type as EventType;
    const name = nameOf(event);
    const properties =
      type === 'identify' || type === 'alias'
        ? {}
        : type === 'group'
          ? { groupId: (event as { groupId: string }).groupId }
          : this.ruleSet.properties.minimizeProperties(type, name ?? undefined, record(event.properties));
    const stored: SnapshotEvent = { type, name, properties, occurredAt: at };
    // As in the events worker: an event is tied to the person only while their consent allows it.
    const linking = decide(this.catalog, p.consent, { capability: 'link_events_to_profile' });
    if (!linking.allowed) {
      if (this.live()) {
        for (const campaign of this.compiled.campaignsForEvent(type, name)) {
          if (campaign.triggerMatches?.(stored)) this.record({ person: p.key, kind: 'skipped', campaign: campaign.id, reason: `event not linked to the person: ${linking.reason}` });
        }
      }
      return this.react(p, null);
    }
    if (this.compiled.needs.windowFor(type, name) !== null) p.events.push(stored);
    this.react(p, stored);
  }

  private applyConsent(p: Person, event: SimEvent & { type: 'track' }): void {
    const purposes = record(event.properties?.purposes) ?? {};
    const method = event.properties?.method === 'form' ? 'form' : 'banner';
    for (const [name, value] of Object.entries(purposes)) {
      const definition = this.catalog.get(name);
      if (!definition || typeof value !== 'boolean') continue;
      p.consent.set(name, { decision: value ? 'granted' : 'withdrawn', occurredAt: this.at, method: value && definition.doubleOptIn ? 'double_opt_in' : method });
    }
    // Manual memberships are profiling too: they go with the consent that allowed them.
    if (!decide(this.catalog, p.consent, { capability: 'build_segments' }).allowed) {
      for (const segmentId of [...p.segments]) {
        if (this.compiled.segmentById.get(segmentId)?.manual !== true) continue;
        p.segments.delete(segmentId);
        this.record({ person: p.key, kind: 'segment_left', segment: segmentId, reason: 'no consent to build segments' });
        this.agenda.push(this.now, { kind: 'segment_change', person: p.key, segmentId, change: 'left' });
      }
    }
  }

  /** What follows any change to a person: segments, exits, waiting journeys, triggers. */
  private react(p: Person, event: SnapshotEvent | null): void {
    let snapshot = this.snapshot(p);
    let recheck: Date | null = null;
    const changes: Array<{ segmentId: string; change: 'entered' | 'left' }> = [];
    for (const s of evaluateSegments(this.compiled, snapshot, this.at, this.catalog)) {
      if (s.nextChangeAt && (recheck === null || s.nextChangeAt < recheck)) recheck = s.nextChangeAt;
      if (s.changed === null) continue;
      if (s.member) p.segments.add(s.segmentId);
      else p.segments.delete(s.segmentId);
      changes.push({ segmentId: s.segmentId, change: s.changed });
      this.record({ person: p.key, kind: s.changed === 'entered' ? 'segment_entered' : 'segment_left', segment: s.segmentId, reason: s.reason });
    }
    snapshot = this.snapshot(p);

    for (const exit of exitsFor(this.compiled, event, snapshot, this.journeyCampaigns(p), this.at, this.catalog)) this.exit(p, exit.campaignId, exit.reason);

    if (event) {
      for (const campaign of this.compiled.campaignsWaitingFor(event.type, event.name)) {
        for (const journey of this.journeysOf(p, campaign.id)) {
          if (journey.state.waiting?.kind !== 'wait_until') continue;
          this.apply(p, campaign, journey, advance(campaign, journey.state, { kind: 'event', at: this.at, event }, this.snapshot(p), this.context(p)));
        }
      }
      if (this.live()) this.enrol(p, triggeredCampaigns(this.compiled, { kind: 'event', event }, this.snapshot(p), p.enrolments, this.at, this.catalog));
    }
    for (const { segmentId, change } of changes) this.onSegmentChange(p, segmentId, change);

    // Exit conditions slide with windows too.
    const after = this.snapshot(p);
    for (const campaignId of this.journeyCampaigns(p)) {
      const next = this.compiled.campaigns.get(campaignId)?.exitCondition?.(after, this.at, this.catalog).nextChangeAt ?? null;
      if (next && (recheck === null || next < recheck)) recheck = next;
    }
    if (recheck) this.recheck(p, recheck.getTime());
  }

  private onSegmentChange(p: Person, segmentId: string, change: 'entered' | 'left'): void {
    if (!this.live()) return;
    this.enrol(p, triggeredCampaigns(this.compiled, { kind: 'segment', segmentId, change }, this.snapshot(p), p.enrolments, this.at, this.catalog));
  }

  private onBroadcast(campaignId: string): void {
    if (!this.live()) return;
    const campaign = this.compiled.campaigns.get(campaignId);
    const trigger = campaign?.file.trigger;
    if (!campaign || !trigger || !('schedule' in trigger)) return;
    for (const p of this.people.values()) {
      if (!p.segments.has(trigger.segment)) continue;
      const snapshot = this.snapshot(p);
      // As in the engine (run-automation.ts broadcast): in each person's zone the journey begins at
      // the tick's wall time in theirs, and an earlier issue that begins at or after this tick does
      // not keep the member out.
      const start = broadcastStart(trigger.schedule, this.at, snapshot.timezone, this.at);
      const enrolments = start
        ? p.enrolments.map((e) => {
            const begins = p.journeys.get(journeyKey(e.campaignId, e.entry))?.state.startedAt.getTime() ?? -Infinity;
            return e.campaignId === campaignId && e.active && begins >= this.now ? { ...e, active: false } : e;
          })
        : p.enrolments;
      this.enrol(p, triggeredCampaigns(this.compiled, { kind: 'schedule', campaignId }, snapshot, enrolments, this.at, this.catalog), start);
    }
  }

  private enrol(p: Person, decisions: readonly TriggerDecision[], start?: BroadcastStart): void {
    for (const d of decisions) {
      const campaign = this.compiled.campaigns.get(d.campaignId);
      if (!campaign) continue;
      if (d.outcome === 'skip' || d.entry === undefined) {
        this.record({ person: p.key, kind: 'skipped', campaign: d.campaignId, reason: d.reason });
        continue;
      }
      p.enrolments.push({ campaignId: d.campaignId, entry: d.entry, startedAt: this.at, active: true });
      this.record({ person: p.key, kind: 'enrolled', campaign: d.campaignId, reason: start ? `${d.reason} ${start.reason}` : d.reason });
      const startAt = start?.at ?? this.at;
      const journey: Journey = { state: startJourney(d.campaignId, d.entry, startAt), generation: 0 };
      p.journeys.set(journeyKey(d.campaignId, d.entry), journey);
      const input = { kind: 'start' as const, at: startAt, ...(start ? { now: this.at } : {}) };
      this.apply(p, campaign, journey, advance(campaign, journey.state, input, this.snapshot(p), this.context(p)));
    }
  }

  // ── journeys ──

  private journeysOf(p: Person, campaignId: string): Journey[] {
    return [...p.journeys.values()].filter((j) => j.state.campaignId === campaignId);
  }

  private journeyCampaigns(p: Person): Set<string> {
    return new Set([...p.journeys.values()].map((j) => j.state.campaignId));
  }

  private context(p: Person) {
    return {
      catalog: this.catalog,
      sendsInWindow: (_channel: 'email', since: Date) =>
        p.sends.filter((s) => (s.status === 'scheduled' || s.status === 'sent') && s.at >= since).length,
    };
  }

  private apply(p: Person, campaign: CompiledCampaign, journey: Journey, result: JourneyResult): void {
    journey.generation++;
    if (result.state) journey.state = result.state;
    let changed = false;
    for (const action of result.actions) changed = this.act(p, campaign, journey, action) || changed;
    if (changed) this.recheck(p, this.now);
  }

  /** Performs one action; true when it changed what segments see. */
  private act(p: Person, campaign: CompiledCampaign, journey: Journey, action: JourneyAction): boolean {
    const base = { person: p.key, campaign: campaign.id };
    switch (action.kind) {
      case 'send': {
        const send: ScheduledSend = {
          id: this.sendIds++,
          campaignId: campaign.id,
          entry: journey.state.entry,
          stepId: action.stepId,
          template: action.template,
          at: action.at,
          ...(action.deferredFrom ? { deferredFrom: action.deferredFrom } : {}),
          ...(action.reason ? { reason: action.reason } : {}),
          status: 'scheduled',
        };
        p.sends.push(send);
        if (action.deferredFrom) this.record({ ...base, kind: 'deferred', step: action.stepId, template: action.template, reason: action.reason ?? `deferred to ${action.at.toISOString()}` });
        if (action.at.getTime() <= this.now) this.deliver(p, send);
        else this.agenda.push(action.at.getTime(), { kind: 'send', person: p.key, send });
        return false;
      }
      case 'skip':
        this.record({ ...base, kind: 'skipped', step: action.stepId, reason: action.reason });
        return false;
      case 'set_trait':
        p.traits[action.name] = action.value;
        this.record({ ...base, kind: 'trait_set', step: action.stepId, reason: `${action.name} = ${JSON.stringify(action.value)}` });
        return true;
      case 'add_to_segment':
      case 'remove_from_segment': {
        const adding = action.kind === 'add_to_segment';
        if (adding) {
          const gate = decide(this.catalog, p.consent, { capability: 'build_segments' });
          if (!gate.allowed) {
            this.record({ ...base, kind: 'skipped', step: action.stepId, segment: action.segmentId, reason: `no consent to build segments: ${gate.reason}` });
            return false;
          }
        }
        if (p.segments.has(action.segmentId) === adding) return false;
        if (adding) p.segments.add(action.segmentId);
        else p.segments.delete(action.segmentId);
        this.record({ ...base, kind: adding ? 'segment_entered' : 'segment_left', step: action.stepId, segment: action.segmentId, reason: `${adding ? 'added' : 'removed'} by step ${action.stepId} of ${campaign.id}` });
        this.agenda.push(this.now, { kind: 'segment_change', person: p.key, segmentId: action.segmentId, change: adding ? 'entered' : 'left' });
        return true;
      }
      case 'wake':
        this.agenda.push(action.at.getTime(), { kind: 'journey', person: p.key, campaignId: campaign.id, entry: journey.state.entry, generation: journey.generation });
        return false;
      case 'finished': {
        this.end(p, campaign.id, journey.state.entry);
        const reason = action.how === 'ended' ? `ended: ${action.reason}` : action.reason;
        this.record({ ...base, kind: action.how === 'exited' ? 'exited' : 'completed', reason });
        return false;
      }
    }
  }

  private end(p: Person, campaignId: string, entry: number): void {
    p.journeys.delete(journeyKey(campaignId, entry));
    for (const e of p.enrolments) if (e.campaignId === campaignId && e.entry === entry) e.active = false;
  }

  /** Ends the campaign's journeys from outside (exit event or condition, consent) and cancels what they scheduled. */
  private exit(p: Person, campaignId: string, reason: string): void {
    for (const journey of this.journeysOf(p, campaignId)) {
      const cancelled: string[] = [];
      const waiting = journey.state.waiting;
      for (const s of p.sends) {
        if (s.campaignId !== campaignId || s.entry !== journey.state.entry || s.status !== 'scheduled') continue;
        s.status = 'cancelled';
        cancelled.push(`send ${s.template} at ${s.at.toISOString()}`);
      }
      if (waiting?.kind === 'wait' && cancelled.length === 0) cancelled.push(`wait until ${waiting.until.toISOString()}`);
      if (waiting?.kind === 'wait_until') cancelled.push(`wait for ${waiting.match.name ?? `any ${waiting.match.type}`} until ${waiting.timeoutAt.toISOString()}`);
      this.end(p, campaignId, journey.state.entry);
      this.record({ person: p.key, kind: 'exited', campaign: campaignId, reason: cancelled.length > 0 ? `${reason}; cancelled ${cancelled.join(', ')}` : reason });
    }
  }

  /** The send as the email worker would make it when due: consent and the frequency cap checked again. */
  private deliver(p: Person, send: ScheduledSend): void {
    if (send.status !== 'scheduled') return;
    const campaign = this.compiled.campaigns.get(send.campaignId);
    if (!campaign) return;
    const base = { person: p.key, campaign: send.campaignId, step: send.stepId, template: send.template };
    const gate = decide(this.catalog, p.consent, { purposes: campaign.file.purposes });
    if (!gate.allowed) {
      send.status = 'skipped';
      this.record({ ...base, kind: 'skipped', reason: `at send time: ${gate.reason}` });
      return;
    }
    const cap = campaign.file.limits.frequency_cap;
    if (cap) {
      const since = this.now - durationMs(cap.per);
      const count = p.sends.filter((s) => s.status === 'sent' && s.at.getTime() > since && s.at.getTime() <= this.now).length;
      if (count >= cap.max) {
        send.status = 'skipped';
        this.record({ ...base, kind: 'skipped', reason: `at send time: frequency cap: ${count} ${cap.channel} sends in the last ${cap.per}, at most ${cap.max}` });
        return;
      }
    }
    send.status = 'sent';
    const reason = send.deferredFrom ? `due ${send.deferredFrom.toISOString()}, ${send.reason ?? 'deferred'}` : 'sent';
    this.record({ ...base, kind: 'send', reason });
  }
}

export function simulate(ruleSet: RuleSet, events: readonly SimEvent[], options: SimulateOptions = {}): Timeline {
  return new Simulation(ruleSet, options).run(events);
}

/** The timeline's entries grouped by person, people in the timeline's order. */
export function entriesByPerson(timeline: Timeline): Map<string, TimelineEntry[]> {
  const byPerson = new Map<string, TimelineEntry[]>(timeline.people.map((p) => [p, []]));
  for (const e of timeline.entries) byPerson.get(e.person)?.push(e);
  return byPerson;
}

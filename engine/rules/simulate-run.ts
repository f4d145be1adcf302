import { CronExpressionParser } from 'cron-parser';
import type { EventType } from '../../schemas/segment';
import { decide } from '../consent/gate';
import { CONSENT_EVENT_NAMES } from '../consent/requests';
import type { SnapshotEvent } from './conditions';
import { evaluateSegments, exitsFor, triggeredCampaigns } from './evaluate';
import { advance, broadcastStart, scheduleZone } from './journey';
import type { RuleSet } from './rule-set';
import type { Item } from './simulate-agenda';
import { asRecord, type SimEvent } from './simulate-input';
import { apply, enrol, exit } from './simulate-journeys';
import { journeyKey, nameOf, type Person, traitsOf } from './simulate-person';
import { deliver } from './simulate-send';
import type { SimulateOptions, Timeline } from './simulate-timeline';
import { World } from './simulate-world';

/**
 * The replay loop: events and timers taken from the agenda in virtual time, and what the engine
 * does on each: the properties policy decides what is stored, consent decides which events are
 * linked to the person, segments are recomputed as windows slide, journeys wake on timers, and
 * broadcasts tick on their cron.
 *
 * A `Consent Updated` event's `properties.purposes` {purpose: true|false} grants or withdraws at
 * once (a double opt-in purpose counts as confirmed).
 */

const MAX_STEPS = 1_000_000;
const MAX_TICKS = 10_000;

class Simulation {
  private readonly world: World;

  constructor(
    private readonly ruleSet: RuleSet,
    private readonly options: SimulateOptions,
  ) {
    this.world = new World(ruleSet, options);
  }

  run(events: readonly SimEvent[]): Timeline {
    const w = this.world;
    const timed = events.map((event) => ({ event, at: Date.parse(event.timestamp as string) }));
    for (const { event, at } of timed) w.agenda.push(at, { kind: 'event', event });
    this.scheduleBroadcasts(timed.map((t) => t.at));
    const until = this.options.until?.getTime() ?? Infinity;
    let steps = 0;
    for (let next = w.agenda.peek(); next !== undefined && next.at <= until; next = w.agenda.peek()) {
      if (++steps > MAX_STEPS) throw new Error(`the simulation did not settle after ${MAX_STEPS} steps (near ${new Date(next.at).toISOString()})`);
      w.agenda.pop();
      w.now = next.at;
      this.handle(next.item);
    }
    const entries = w.entries.map((e, i) => ({ e, i })).sort((a, b) => a.e.at.getTime() - b.e.at.getTime() || a.i - b.i);
    return {
      version: this.ruleSet.version,
      from: this.options.from ?? null,
      until: this.options.until ?? null,
      people: [...w.people.keys()],
      entries: entries.map(({ e }) => e),
    };
  }

  /** Each broadcast's cron ticks from --from (else the first event) to --until (else the last). */
  private scheduleBroadcasts(eventTimes: readonly number[]): void {
    const w = this.world;
    if (w.compiled.scheduled.length === 0) return;
    const first = eventTimes.reduce<number | undefined>((min, t) => (min === undefined || t < min ? t : min), undefined);
    const last = eventTimes.reduce<number | undefined>((max, t) => (max === undefined || t > max ? t : max), undefined);
    const start = this.options.from?.getTime() ?? first;
    const end = this.options.until?.getTime() ?? last;
    if (start === undefined || end === undefined) return;
    for (const campaign of w.compiled.scheduled) {
      const trigger = campaign.file.trigger;
      if (!('schedule' in trigger)) continue;
      const ticks = CronExpressionParser.parse(trigger.schedule.cron, {
        currentDate: new Date(start - 1),
        endDate: new Date(end),
        tz: scheduleZone(trigger.schedule),
      });
      for (let n = 0; n < MAX_TICKS && ticks.hasNext(); n++) w.agenda.push(ticks.next().toDate().getTime(), { kind: 'broadcast', campaignId: campaign.id });
    }
  }

  private handle(item: Item): void {
    const w = this.world;
    switch (item.kind) {
      case 'event':
        return this.onEvent(item.event);
      case 'segments': {
        const p = w.person(item.person);
        if (p.recheckAt !== w.now) return; // superseded by an earlier recompute
        p.recheckAt = null;
        return this.react(p, null);
      }
      case 'segment_change':
        return this.onSegmentChange(w.person(item.person), item.segmentId, item.change);
      case 'journey': {
        const p = w.person(item.person);
        const journey = p.journeys.get(journeyKey(item.campaignId, item.entry));
        const campaign = w.compiled.campaigns.get(item.campaignId);
        if (!journey || !campaign || journey.generation !== item.generation) return;
        return apply(w, p, campaign, journey, advance(campaign, journey.state, { kind: 'timer', at: w.at }, w.snapshot(p), w.context(p)));
      }
      case 'send':
        return deliver(w, w.person(item.person), item.send);
      case 'broadcast':
        return this.onBroadcast(item.campaignId);
    }
  }

  // ── events ──

  private onEvent(event: SimEvent): void {
    const w = this.world;
    const key = event.userId ?? event.anonymousId;
    if (key === undefined) return; // alias without either: the schema admits it, nobody to key it to
    const p = w.person(key);
    const at = w.at;
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
          : this.ruleSet.properties.minimizeProperties(type, name ?? undefined, asRecord(event.properties));
    const stored: SnapshotEvent = { type, name, properties, occurredAt: at };
    // As in the events worker: an event is tied to the person only while their consent allows it.
    const linking = decide(w.catalog, p.consent, { capability: 'link_events_to_profile' });
    if (!linking.allowed) {
      if (w.live()) {
        for (const campaign of w.compiled.campaignsForEvent(type, name)) {
          if (campaign.triggerMatches?.(stored)) w.record({ person: p.key, kind: 'skipped', campaign: campaign.id, reason: `event not linked to the person: ${linking.reason}` });
        }
      }
      return this.react(p, null);
    }
    if (w.compiled.needs.windowFor(type, name) !== null) p.events.push(stored);
    this.react(p, stored);
  }

  private applyConsent(p: Person, event: SimEvent & { type: 'track' }): void {
    const w = this.world;
    const purposes = asRecord(event.properties?.purposes) ?? {};
    const method = event.properties?.method === 'form' ? 'form' : 'banner';
    for (const [name, value] of Object.entries(purposes)) {
      const definition = w.catalog.get(name);
      if (!definition || typeof value !== 'boolean') continue;
      p.consent.set(name, { decision: value ? 'granted' : 'withdrawn', occurredAt: w.at, method: value && definition.doubleOptIn ? 'double_opt_in' : method });
    }
    // Manual memberships are profiling too: they go with the consent that allowed them.
    if (!decide(w.catalog, p.consent, { capability: 'build_segments' }).allowed) {
      for (const segmentId of [...p.segments]) {
        if (w.compiled.segmentById.get(segmentId)?.manual !== true) continue;
        p.segments.delete(segmentId);
        w.record({ person: p.key, kind: 'segment_left', segment: segmentId, reason: 'no consent to build segments' });
        w.agenda.push(w.now, { kind: 'segment_change', person: p.key, segmentId, change: 'left' });
      }
    }
  }

  /** What follows any change to a person: segments, exits, waiting journeys, triggers. */
  private react(p: Person, event: SnapshotEvent | null): void {
    const w = this.world;
    let snapshot = w.snapshot(p);
    let recheck: Date | null = null;
    const changes: Array<{ segmentId: string; change: 'entered' | 'left' }> = [];
    for (const s of evaluateSegments(w.compiled, snapshot, w.at, w.catalog)) {
      if (s.nextChangeAt && (recheck === null || s.nextChangeAt < recheck)) recheck = s.nextChangeAt;
      if (s.changed === null) continue;
      if (s.member) p.segments.add(s.segmentId);
      else p.segments.delete(s.segmentId);
      changes.push({ segmentId: s.segmentId, change: s.changed });
      w.record({ person: p.key, kind: s.changed === 'entered' ? 'segment_entered' : 'segment_left', segment: s.segmentId, reason: s.reason });
    }
    snapshot = w.snapshot(p);

    for (const e of exitsFor(w.compiled, event, snapshot, w.journeyCampaigns(p), w.at, w.catalog)) exit(w, p, e.campaignId, e.reason);

    if (event) {
      for (const campaign of w.compiled.campaignsWaitingFor(event.type, event.name)) {
        for (const journey of w.journeysOf(p, campaign.id)) {
          if (journey.state.waiting?.kind !== 'wait_until') continue;
          apply(w, p, campaign, journey, advance(campaign, journey.state, { kind: 'event', at: w.at, event }, w.snapshot(p), w.context(p)));
        }
      }
      if (w.live()) enrol(w, p, triggeredCampaigns(w.compiled, { kind: 'event', event }, w.snapshot(p), p.enrolments, w.at, w.catalog));
    }
    for (const { segmentId, change } of changes) this.onSegmentChange(p, segmentId, change);

    // Exit conditions slide with windows too.
    const after = w.snapshot(p);
    for (const campaignId of w.journeyCampaigns(p)) {
      const next = w.compiled.campaigns.get(campaignId)?.exitCondition?.(after, w.at, w.catalog).nextChangeAt ?? null;
      if (next && (recheck === null || next < recheck)) recheck = next;
    }
    if (recheck) w.recheck(p, recheck.getTime());
  }

  private onSegmentChange(p: Person, segmentId: string, change: 'entered' | 'left'): void {
    const w = this.world;
    if (!w.live()) return;
    enrol(w, p, triggeredCampaigns(w.compiled, { kind: 'segment', segmentId, change }, w.snapshot(p), p.enrolments, w.at, w.catalog));
  }

  private onBroadcast(campaignId: string): void {
    const w = this.world;
    if (!w.live()) return;
    const campaign = w.compiled.campaigns.get(campaignId);
    const trigger = campaign?.file.trigger;
    if (!campaign || !trigger || !('schedule' in trigger)) return;
    for (const p of w.people.values()) {
      if (!p.segments.has(trigger.segment)) continue;
      const snapshot = w.snapshot(p);
      // As in the engine (run-automation.ts broadcast): in each person's zone the journey begins at
      // the tick's wall time in theirs, and an earlier issue that begins at or after this tick does
      // not keep the member out.
      const start = broadcastStart(trigger.schedule, w.at, snapshot.timezone, w.at);
      const enrolments = start
        ? p.enrolments.map((e) => {
            const begins = p.journeys.get(journeyKey(e.campaignId, e.entry))?.state.startedAt.getTime() ?? -Infinity;
            return e.campaignId === campaignId && e.active && begins >= w.now ? { ...e, active: false } : e;
          })
        : p.enrolments;
      enrol(w, p, triggeredCampaigns(w.compiled, { kind: 'schedule', campaignId }, snapshot, enrolments, w.at, w.catalog), start);
    }
  }
}

export function simulate(ruleSet: RuleSet, events: readonly SimEvent[], options: SimulateOptions = {}): Timeline {
  return new Simulation(ruleSet, options).run(events);
}

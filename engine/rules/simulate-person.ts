import type { PurposeState } from '../consent/gate';
import { scrubText } from '../privacy/scrub-text';
import type { ProfileSnapshot, SnapshotEvent } from './conditions';
import { isTimeZone, type JourneyState } from './journey';
import { asRecord, type SimEvent } from './simulate-input';

/**
 * A simulated person: what the engine keeps of a profile (traits, consent, segments, the events
 * segment windows need), their enrolments and journeys, and the sends scheduled for them.
 * People are keyed by userId, else anonymousId (alias events merge nobody).
 */

export interface ScheduledSend {
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

export interface Journey {
  state: JourneyState;
  /** Bumped at each step, so that a wake-up scheduled before it is recognised as stale. */
  generation: number;
}

export interface Person {
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

export function newPerson(key: string): Person {
  return { key, traits: {}, consent: new Map(), segments: new Set(), events: [], lastSeenAt: null, enrolments: [], journeys: new Map(), sends: [], recheckAt: null };
}

export const journeyKey = (campaignId: string, entry: number) => `${campaignId}\u0000${entry}`;

/** The profile as the evaluator sees it at `now`; drops the events older than any window needs. */
export function snapshotOf(p: Person, now: number, maxWindowMs: number): ProfileSnapshot {
  const horizon = now - maxWindowMs;
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

export function traitsOf(event: SimEvent): Record<string, unknown> | undefined {
  return asRecord(event.traits) ?? asRecord(asRecord(event.context)?.traits);
}

/** The event's name as the engine stores it (scrubbed of anything that looks like PII, at most 200 characters). */
export function nameOf(event: SimEvent): string | null {
  const raw = event.type === 'track' ? event.event : event.type === 'page' || event.type === 'screen' ? event.name : undefined;
  return typeof raw === 'string' ? scrubText(raw).slice(0, 200) : null;
}

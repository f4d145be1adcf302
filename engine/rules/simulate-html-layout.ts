import { entriesByPerson, type Timeline, type TimelineEntry } from './simulate-timeline';

/**
 * The geometry of the HTML timeline, apart from its markup: the time axis, and per person a lane
 * of tracks (one per campaign or segment) holding markers, journeys and waits, in percent of the
 * axis. Waits are not entries of the simulation: a journey's time passes only while it waits (a
 * wait step, a wait for an event, quiet hours, a person's own time for a broadcast), so a wait is
 * read off as the time between two of the journey's steps.
 */

export interface Tick {
  readonly at: Date;
  readonly left: number;
  readonly label: string;
}

export interface Axis {
  readonly start: Date;
  readonly end: Date;
  readonly ticks: readonly Tick[];
}

export interface Marker {
  readonly entry: TimelineEntry;
  readonly left: number;
  /** Markers closer than MIN_GAP on the same track are stacked in rows. */
  readonly row: number;
}

/** A stretch of time on a track: a journey (enrolment to exit), or a wait within it. */
export interface Span {
  readonly from: Date;
  readonly to: Date;
  /** Still going on when the simulation ends. */
  readonly open: boolean;
  readonly left: number;
  readonly width: number;
}

export interface Wait extends Span {
  readonly campaign: string;
  /** What the wait ended with (the journey's next step), when it ended. */
  readonly next?: TimelineEntry;
}

export interface Track {
  readonly kind: 'campaign' | 'segment';
  readonly id: string;
  readonly markers: readonly Marker[];
  readonly journeys: readonly Span[];
  readonly waits: readonly Wait[];
  readonly rows: number;
}

/** One row of a person's table: an entry of the simulation, or a wait read off the journey. */
export type Row = { readonly kind: 'entry'; readonly at: Date; readonly entry: TimelineEntry } | { readonly kind: 'wait'; readonly at: Date; readonly wait: Wait };

export interface Lane {
  readonly person: string;
  readonly tracks: readonly Track[];
  /** In time order, waits at the moment they begin, after what happened then. */
  readonly rows: readonly Row[];
}

export interface Layout {
  /** null when nothing happens at all (no entry and no --from/--until). */
  readonly axis: Axis | null;
  readonly lanes: readonly Lane[];
}

/** Room at each end of the axis (percent), so that markers at the ends are not cut. */
const PAD = 1.5;
/** Markers nearer than this (percent of the axis) go on separate rows. */
const MIN_GAP = 3;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TICK_STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 91 * DAY, 364 * DAY];
const MAX_TICKS = 8;

const iso = (d: Date) => d.toISOString();

function axisOf(timeline: Timeline): Axis | null {
  const first = timeline.entries[0]?.at;
  const last = timeline.entries[timeline.entries.length - 1]?.at;
  let start = timeline.from ?? first ?? timeline.until;
  let end = timeline.until ?? last ?? timeline.from;
  if (!start || !end) return null;
  // A single moment still needs a width to be drawn on.
  if (end.getTime() <= start.getTime()) {
    start = new Date(start.getTime() - HOUR);
    end = new Date(end.getTime() + HOUR);
  }
  const span = end.getTime() - start.getTime();
  const step = TICK_STEPS.find((s) => span / s <= MAX_TICKS) ?? Math.ceil(span / MAX_TICKS / DAY) * DAY;
  // Ticks of a day or more fall on midnight UTC; shorter ones on whole multiples of the step.
  const align = Math.min(step, DAY);
  const ticks: Tick[] = [];
  for (let t = Math.ceil(start.getTime() / align) * align; t <= end.getTime(); t += step) {
    const at = new Date(t);
    ticks.push({ at, left: 0, label: step >= DAY ? iso(at).slice(0, 10) : `${iso(at).slice(5, 10)} ${iso(at).slice(11, 16)}` });
  }
  const axis = { start, end, ticks };
  return { ...axis, ticks: ticks.map((t) => ({ ...t, left: position(axis, t.at) })) };
}

/** Where a moment falls on the axis, in percent of its width. */
export function position(axis: Pick<Axis, 'start' | 'end'>, at: Date): number {
  const span = axis.end.getTime() - axis.start.getTime();
  const fraction = span > 0 ? (at.getTime() - axis.start.getTime()) / span : 0.5;
  return round(PAD + (100 - 2 * PAD) * Math.min(1, Math.max(0, fraction)));
}

const round = (n: number) => Math.round(n * 1000) / 1000;

function span(axis: Axis, from: Date, to: Date, open: boolean): Span {
  const left = position(axis, from);
  return { from, to, open, left, width: round(position(axis, to) - left) };
}

/** Entries of a running journey: its start, its steps, its end (a trigger skipped while it runs is not one). */
const isJourneyPoint = (e: TimelineEntry) => e.kind === 'enrolled' || e.kind === 'exited' || e.kind === 'completed' || e.step !== undefined;

function campaignTrack(axis: Axis, campaign: string, entries: readonly TimelineEntry[]): Omit<Track, 'markers' | 'rows'> {
  const journeys: Span[] = [];
  const waits: Wait[] = [];
  // Issues of a broadcast in each person's own zone may overlap: a journey lasts while any runs.
  let running = 0;
  let begun: Date | null = null;
  let previous: Date | null = null;
  for (const e of entries) {
    if (!isJourneyPoint(e)) continue;
    if (previous && running > 0 && e.at.getTime() > previous.getTime()) waits.push({ ...span(axis, previous, e.at, false), campaign, next: e });
    if (e.kind === 'enrolled') {
      if (running === 0) begun = e.at;
      running++;
    } else if ((e.kind === 'exited' || e.kind === 'completed') && running > 0) {
      running--;
      if (running === 0 && begun) {
        journeys.push(span(axis, begun, e.at, false));
        begun = null;
      }
    }
    previous = running > 0 ? e.at : null;
  }
  if (running > 0 && begun && previous) {
    journeys.push(span(axis, begun, axis.end, true));
    if (axis.end.getTime() > previous.getTime()) waits.push({ ...span(axis, previous, axis.end, true), campaign });
  }
  return { kind: 'campaign', id: campaign, journeys, waits };
}

function stack(axis: Axis, entries: readonly TimelineEntry[]): { markers: Marker[]; rows: number } {
  const rowEnds: number[] = [];
  const markers = entries.map((entry) => {
    const left = position(axis, entry.at);
    let row = rowEnds.findIndex((end) => left - end >= MIN_GAP);
    if (row === -1) row = rowEnds.push(left) - 1;
    else rowEnds[row] = left;
    return { entry, left, row };
  });
  return { markers, rows: Math.max(1, rowEnds.length) };
}

function laneOf(axis: Axis | null, person: string, entries: readonly TimelineEntry[]): Lane {
  const groups = new Map<string, { kind: 'campaign' | 'segment'; id: string; entries: TimelineEntry[] }>();
  for (const e of entries) {
    // A segment change made by a campaign's step belongs to that campaign's journey.
    const [kind, id] = e.campaign !== undefined ? (['campaign', e.campaign] as const) : (['segment', e.segment ?? ''] as const);
    const key = `${kind}\u0000${id}`;
    const group = groups.get(key) ?? { kind, id, entries: [] };
    group.entries.push(e);
    groups.set(key, group);
  }
  const tracks: Track[] = [];
  const waits: Wait[] = [];
  if (axis) {
    for (const g of groups.values()) {
      const drawn = g.kind === 'campaign' ? campaignTrack(axis, g.id, g.entries) : { kind: g.kind, id: g.id, journeys: [], waits: [] };
      tracks.push({ ...drawn, ...stack(axis, g.entries) });
      waits.push(...drawn.waits);
    }
  }
  const rows: Row[] = entries.map((entry) => ({ kind: 'entry', at: entry.at, entry }));
  for (const wait of waits) {
    // After the last entry at the moment the wait begins.
    let i = rows.length;
    while (i > 0 && (rows[i - 1] as Row).at.getTime() > wait.from.getTime()) i--;
    rows.splice(i, 0, { kind: 'wait', at: wait.from, wait });
  }
  return { person, tracks, rows };
}

export function layoutTimeline(timeline: Timeline): Layout {
  const axis = axisOf(timeline);
  const lanes = [...entriesByPerson(timeline)].map(([person, entries]) => laneOf(axis, person, entries));
  return { axis, lanes };
}

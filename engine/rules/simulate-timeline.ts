/**
 * The result of a simulation: per person, what would happen, when, and why. The text report, the
 * JSON output and the HTML timeline are all made from it.
 */

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

/** The timeline's entries grouped by person, people in the timeline's order. */
export function entriesByPerson(timeline: Timeline): Map<string, TimelineEntry[]> {
  const byPerson = new Map<string, TimelineEntry[]>(timeline.people.map((p) => [p, []]));
  for (const e of timeline.entries) byPerson.get(e.person)?.push(e);
  return byPerson;
}

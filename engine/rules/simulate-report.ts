import { entriesByPerson, type Timeline, type TimelineEntry } from './simulate-timeline';

/** The text report of `consentflow rules simulate`: per person, one line per entry. */

const time = (d: Date) => d.toISOString().replace('.000Z', 'Z');

/** `campaign · step → template`, or `segment (by campaign · step)` for a step's segment change. */
export function entrySubject(e: TimelineEntry): string {
  const step = e.step === undefined ? '' : ` · ${e.step}`;
  if (e.segment !== undefined) return e.campaign === undefined ? e.segment : `${e.segment} (by ${e.campaign}${step})`;
  return `${e.campaign ?? ''}${step}${e.template === undefined ? '' : ` → ${e.template}`}`;
}

/** Per person, one line per entry: time, what happened, to which campaign or segment, and why. */
export function formatTimeline(timeline: Timeline): string[] {
  const byPerson = entriesByPerson(timeline);
  const span = timeline.from || timeline.until ? ` · ${timeline.from ? time(timeline.from) : '…'} to ${timeline.until ? time(timeline.until) : '…'}` : '';
  const out = [`rules version ${timeline.version.slice(0, 8)} · ${byPerson.size} ${byPerson.size === 1 ? 'person' : 'people'} · ${timeline.entries.length} entries${span}`];
  for (const [person, entries] of byPerson) {
    out.push('', person);
    if (entries.length === 0) out.push('  nothing happens');
    for (const e of entries) out.push(`  ${time(e.at)}  ${e.kind.padEnd(15)}  ${entrySubject(e)}  — ${e.reason}`);
  }
  return out;
}

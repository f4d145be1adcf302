import { entrySubject } from './simulate-report';
import { type Axis, type Lane, layoutTimeline, type Marker, type Row, type Track, type Wait } from './simulate-html-layout';
import type { Timeline, TimelineEntry, TimelineKind } from './simulate-timeline';

/**
 * `consentflow rules simulate --html FILE`: the simulation as one self-contained HTML page, a lane
 * per person on a shared time axis, and the same events as a table per person. It is opened from
 * a disk or attached to a review: inline CSS only, no script, no external asset, so it reads the
 * same anywhere and fetches nothing. Every string from the simulation (rule files are written by
 * marketers, people's ids come from the events) is escaped: it appears as text, never as markup.
 * It holds nothing about a person beyond what the simulation's input already had.
 */

export interface SimulationHtmlOptions {
  /** Names the simulated input in the page's title (the events file's name, never its path). */
  readonly source?: string;
  /** The `name` of each campaign and segment by id, from their files, shown beside the ids. */
  readonly campaignNames?: ReadonlyMap<string, string>;
  readonly segmentNames?: ReadonlyMap<string, string>;
}

type Names = Pick<SimulationHtmlOptions, 'campaignNames' | 'segmentNames'>;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text or an attribute value made safe for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** What each kind is called on the page, and the glyph of its marker (shape and colour both tell it). */
const KINDS: Record<TimelineKind | 'wait', { readonly label: string; readonly glyph: string }> = {
  enrolled: { label: 'enrolled', glyph: '\u25B6\uFE0E' },
  send: { label: 'sent', glyph: '\u2709\uFE0E' },
  deferred: { label: 'deferred', glyph: '\u21B7' },
  skipped: { label: 'skipped', glyph: '\u2715' },
  exited: { label: 'exited', glyph: '\u21E5' },
  completed: { label: 'completed', glyph: '\u2713' },
  segment_entered: { label: 'entered segment', glyph: '+' },
  segment_left: { label: 'left segment', glyph: '\u2212' },
  trait_set: { label: 'trait set', glyph: '\u270E' },
  wait: { label: 'waits', glyph: '' },
};

const LEGEND_ORDER: ReadonlyArray<TimelineKind> = ['enrolled', 'send', 'deferred', 'skipped', 'exited', 'completed', 'segment_entered', 'segment_left', 'trait_set'];

const time = (d: Date) => d.toISOString().replace('.000Z', 'Z');
const timeTag = (d: Date) => `<time datetime="${d.toISOString()}">${time(d)}</time>`;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `2d 3h`, `45m`: the two largest units. */
export function formatDuration(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`);
  }
  const shown = parts.slice(0, 2).filter((p, i) => i === 0 || !p.startsWith('0'));
  return shown.length > 0 ? shown.join(' ') : `${ms}ms`;
}

function waitText(w: Wait): string {
  const length = formatDuration(w.to.getTime() - w.from.getTime());
  if (w.open) return `waits ${length}: still waiting when the simulation ends (${time(w.to)})`;
  const next = w.next ? `, then ${KINDS[w.next.kind].label}${w.next.step === undefined ? '' : ` (${w.next.step})`}` : '';
  return `waits ${length}, until ${time(w.to)}${next}`;
}

const markerTitle = (e: TimelineEntry) => `${time(e.at)} ${KINDS[e.kind].label}: ${entrySubject(e)} \u2014 ${e.reason}`;

// Colours: white on each marker colour and the page's text on its background are above 4.5:1 (WCAG AA).
const CSS = `
:root{color-scheme:light;--ink:#1f2328;--muted:#4b5563;--line:#d0d7de;--band:#dbe7fb;--bg:#fff}
*{box-sizing:border-box}
body{margin:0;padding:1rem 1.5rem 3rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
h1{font-size:1.5rem;margin:.2rem 0 .4rem}h2{font-size:1.2rem;margin:2rem 0 .6rem}h3{font-size:1.05rem;margin:1.6rem 0 .4rem;overflow-wrap:anywhere}
p{margin:.3rem 0}.muted{color:var(--muted)}
.legend{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;list-style:none;padding:0;margin:.6rem 0}
.legend li{display:flex;align-items:center;gap:.35rem}
.m{display:inline-flex;align-items:center;justify-content:center;width:22px;height:22px;border-radius:50%;color:#fff;font-size:13px;line-height:1;font-weight:700;border:1px solid #fff}
.legend .m{position:static}
.k-enrolled{background:#1d4ed8}.k-send{background:#047857}.k-deferred{background:#92400e}.k-skipped{background:#b91c1c;border-radius:3px}
.k-exited{background:#6d28d9}.k-completed{background:#374151}.k-segment_entered{background:#0f766e}.k-segment_left{background:#155e75}.k-trait_set{background:#4b5563}
.swatch{display:inline-block;width:28px;height:14px;border:1px solid #93a3bd}
.swatch.journey{background:var(--band)}
.swatch.wait,.bar-wait{background:repeating-linear-gradient(135deg,#eef1f5 0 6px,#dde3ea 6px 9px)}
.chart{margin:0;border:1px solid var(--line);border-radius:6px}
.chart figcaption{padding:.5rem .75rem;border-bottom:1px solid var(--line)}
.scroll{overflow-x:auto}
.grid{min-width:880px}
.row{display:flex;border-bottom:1px solid var(--line)}
.row>.name{flex:0 0 13rem;padding:.3rem .6rem;overflow-wrap:anywhere;font-size:.85rem;border-right:1px solid var(--line)}
.row>.area{position:relative;flex:1 1 auto}
.axis{position:sticky;top:0;z-index:2;background:#f6f8fa}
.axis .area{height:2.2rem}
.tick{position:absolute;top:0;bottom:0;border-left:1px solid var(--line)}
.tick span{position:absolute;top:.55rem;left:4px;white-space:nowrap;font-size:.75rem;color:var(--muted)}
.person{background:#f6f8fa;font-weight:600}.person .name{flex-basis:100%;border-right:0;font-size:.95rem}
.bar-journey{position:absolute;top:2px;bottom:2px;background:var(--band);border-left:2px solid #1d4ed8;border-radius:3px}
.bar-journey.open{border-right:2px dashed #1d4ed8}
.bar-wait{position:absolute;bottom:3px;height:15px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;font-size:.7rem;line-height:15px;padding:0 3px;color:var(--ink);border-radius:2px}
.area .m{position:absolute;z-index:1}
.nothing{padding:.35rem .6rem;font-style:italic;color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}
tr.wait-row td{color:var(--muted);font-style:italic}
td.kind{white-space:nowrap}
td.time{white-space:nowrap;font-variant-numeric:tabular-nums}
@media print{.axis{position:static}.scroll{overflow:visible}}
`;

function legend(): string {
  const items = LEGEND_ORDER.map((k) => `<li><span class="m k-${k}" aria-hidden="true">${KINDS[k].glyph}</span>${escapeHtml(KINDS[k].label)}</li>`);
  items.push('<li><span class="swatch journey" aria-hidden="true"></span>in a campaign (enrolled until exited or completed)</li>');
  items.push('<li><span class="swatch wait" aria-hidden="true"></span>waiting between two steps of a campaign</li>');
  return `<ul class="legend">${items.join('')}</ul>`;
}

/** Tick lines; on the axis with their label, but for one too near the end to show it whole. */
function ticks(axis: Axis, labelled: boolean): string {
  return axis.ticks.map((t) => `<div class="tick" style="left:${t.left}%">${labelled && t.left <= 92 ? `<span>${escapeHtml(t.label)}</span>` : ''}</div>`).join('');
}

/** Rows are 26px apart; a track with waits keeps 18px at its foot for their strip. */
function trackHeight(track: Track): number {
  return track.rows * 26 + 6 + (track.waits.length > 0 ? 18 : 0);
}

function marker(m: Marker): string {
  const k = m.entry.kind;
  return `<span class="m k-${k}" style="left:calc(${m.left}% - 11px);top:${4 + m.row * 26}px" title="${escapeHtml(markerTitle(m.entry))}">${KINDS[k].glyph}</span>`;
}

function trackName(track: Pick<Track, 'kind' | 'id'>, names: Names): string {
  const name = (track.kind === 'campaign' ? names.campaignNames : names.segmentNames)?.get(track.id);
  return `${track.kind} ${track.id}${name === undefined || name === track.id ? '' : ` (${name})`}`;
}

function trackRow(axis: Axis, track: Track, names: Names): string {
  const name = trackName(track, names);
  const journeys = track.journeys.map((j) => `<div class="bar-journey${j.open ? ' open' : ''}" style="left:${j.left}%;width:${j.width}%"></div>`);
  // A wait too short for its label keeps it in its title only.
  const waits = track.waits.map(
    (w) =>
      `<div class="bar-wait" style="left:${w.left}%;width:${w.width}%" title="${escapeHtml(waitText(w))}">${w.width >= 4 ? escapeHtml(formatDuration(w.to.getTime() - w.from.getTime())) : ''}</div>`,
  );
  return (
    `<div class="row"><div class="name">${escapeHtml(name)}</div>` +
    `<div class="area" style="min-height:${trackHeight(track)}px">${ticks(axis, false)}${journeys.join('')}${waits.join('')}${track.markers.map(marker).join('')}</div></div>`
  );
}

/** The visual timeline. Hidden from screen readers: the tables below say the same, in order. */
function chart(axis: Axis | null, lanes: readonly Lane[], names: Names): string {
  if (!axis) return '<p>Nothing happens to anyone in this simulation.</p>';
  const rows = lanes.map((lane) => {
    const head = `<div class="row person"><div class="name">${escapeHtml(lane.person)}</div></div>`;
    const tracks = lane.tracks.length === 0 ? `<div class="row"><div class="nothing">nothing happens</div></div>` : lane.tracks.map((t) => trackRow(axis, t, names)).join('');
    return `<div class="lane">${head}${tracks}</div>`;
  });
  return (
    '<figure class="chart">' +
    `<figcaption>One lane per person, one track per campaign or segment; time runs left to right, from ${timeTag(axis.start)} to ${timeTag(axis.end)} (UTC). ` +
    'Hover over a marker for its details; every event is also listed in the tables below.</figcaption>' +
    '<div class="scroll" tabindex="0" role="group" aria-label="timeline chart (scrolls sideways when narrow)"><div class="grid" aria-hidden="true">' +
    `<div class="row axis"><div class="name">time (UTC)</div><div class="area">${ticks(axis, true)}</div></div>` +
    `${rows.join('')}</div></div></figure>`
  );
}

/** The campaigns and segments the simulation touched, with the names their files give them. */
function glossary(timeline: Timeline, names: Names): string {
  const seen = new Map<string, { kind: 'campaign' | 'segment'; id: string }>();
  for (const e of timeline.entries) {
    if (e.campaign !== undefined) seen.set(`campaign\u0000${e.campaign}`, { kind: 'campaign', id: e.campaign });
    if (e.segment !== undefined) seen.set(`segment\u0000${e.segment}`, { kind: 'segment', id: e.segment });
  }
  if (seen.size === 0) return '';
  const items = [...seen.values()].map((t) => `<li>${escapeHtml(trackName(t, names))}</li>`);
  return `<h2>Campaigns and segments</h2><ul>${items.join('')}</ul>`;
}

function tableRow(row: Row): string {
  if (row.kind === 'wait') {
    const w = row.wait;
    return `<tr class="wait-row"><td class="time">${timeTag(w.from)}</td><td class="kind">waits</td><td>${escapeHtml(w.campaign)}</td><td>${escapeHtml(waitText(w))}</td></tr>`;
  }
  const e = row.entry;
  return `<tr><td class="time">${timeTag(e.at)}</td><td class="kind"><span class="m k-${e.kind}" aria-hidden="true">${KINDS[e.kind].glyph}</span> ${escapeHtml(KINDS[e.kind].label)}</td><td>${escapeHtml(entrySubject(e))}</td><td>${escapeHtml(e.reason)}</td></tr>`;
}

function personSection(lane: Lane, index: number): string {
  const id = `person-${index + 1}`;
  const counts = lane.rows.filter((r) => r.kind === 'entry').length;
  const body =
    lane.rows.length === 0
      ? '<p>Nothing happens to this person.</p>'
      : `<table aria-labelledby="${id}"><thead><tr><th scope="col">time (UTC)</th><th scope="col">what</th><th scope="col">campaign, step, template or segment</th><th scope="col">why</th></tr></thead>` +
        `<tbody>${lane.rows.map(tableRow).join('')}</tbody></table>`;
  return `<section aria-labelledby="${id}"><h3 id="${id}">${escapeHtml(lane.person)} <span class="muted">(${plural(counts, 'entry', 'entries')})</span></h3>${body}</section>`;
}

function summary(timeline: Timeline, people: number): string {
  const byKind = new Map<TimelineKind, number>();
  for (const e of timeline.entries) byKind.set(e.kind, (byKind.get(e.kind) ?? 0) + 1);
  const kinds = LEGEND_ORDER.filter((k) => byKind.has(k)).map((k) => `${byKind.get(k)} ${KINDS[k].label}`);
  const span = timeline.from || timeline.until ? `; from ${timeline.from ? timeTag(timeline.from) : 'the first event'} to ${timeline.until ? timeTag(timeline.until) : 'when nothing is left to happen'}` : '';
  return (
    `<p>Rules version <code>${escapeHtml(timeline.version.slice(0, 8))}</code>; ${plural(people, 'person', 'people')}; ${plural(timeline.entries.length, 'entry', 'entries')}${span}.</p>` +
    (kinds.length > 0 ? `<p>${escapeHtml(kinds.join(', '))}.</p>` : '')
  );
}

/** The simulation as a self-contained HTML page (a pure function: the caller writes it). */
export function renderSimulationHtml(timeline: Timeline, options: SimulationHtmlOptions = {}): string {
  const { axis, lanes } = layoutTimeline(timeline);
  const title = `Rules simulation${options.source ? `: ${options.source}` : ''}`;
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<header>',
    `<h1>${escapeHtml(title)}</h1>`,
    summary(timeline, lanes.length),
    '<p class="muted">What the rules would do with these events, in virtual time: made by <code>consentflow rules simulate</code>; no email was sent. Times are UTC.</p>',
    '</header>',
    '<main>',
    '<h2>Timeline</h2>',
    legend(),
    chart(axis, lanes, options),
    glossary(timeline, options),
    '<h2>Events by person</h2>',
    '<p class="muted">Waits are read off the campaign: the time between two of its steps.</p>',
    lanes.map(personSection).join('\n'),
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

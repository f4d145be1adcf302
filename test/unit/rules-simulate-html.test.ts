import { escapeHtml, formatDuration } from '../../engine/rules/simulate-html';
import { layoutTimeline } from '../../engine/rules/simulate-html-layout';
import { parseSimEvents, renderSimulationHtml, simulate, type Timeline, type TimelineEntry } from '../../engine/rules/simulate';
import { buildRuleSet, jsonl } from '../support/rule-sets';

/** The HTML timeline of `rules simulate --html`: a pure function of the simulation's result. */

const ALL = { email_marketing: true, profiling: true, analytics: true };
const consent = (userId: string, timestamp: string, purposes: Record<string, boolean> = ALL) => ({
  type: 'track',
  event: 'Consent Updated',
  userId,
  timestamp,
  properties: { purposes },
});
const track = (userId: string, event: string, timestamp: string) => ({ type: 'track', event, userId, timestamp, properties: {} });

function run(events: object[], ruleSet: ReturnType<typeof buildRuleSet>, options: { until?: string } = {}): Timeline {
  const parsed = parseSimEvents(jsonl(events), 'events.jsonl', ruleSet.purposes);
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return simulate(ruleSet, parsed.events, options.until ? { until: new Date(options.until) } : {});
}

const welcome = buildRuleSet({
  campaigns: [
    {
      id: 'welcome',
      name: 'Welcome',
      purposes: ['email_marketing'],
      trigger: { event: { name: 'Signed Up' } },
      steps: [{ id: 'hello', send: { template: 'welcome' } }, { wait: '2d' }, { id: 'tips', send: { template: 'tips' } }],
    },
  ],
});

/** Ana: enrolled, sent, waits 2d, sent, completed. Ben: no email consent, skipped. Cy: only seen, nothing happens. */
const timeline = run(
  [
    consent('ana', '2026-01-05T10:00:00Z'),
    track('ana', 'Signed Up', '2026-01-05T11:00:00Z'),
    consent('ben', '2026-01-05T10:00:00Z', { profiling: true, analytics: true }),
    track('ben', 'Signed Up', '2026-01-06T12:00:00Z'),
    consent('cy', '2026-01-06T09:00:00Z'),
  ],
  welcome,
);
const html = renderSimulationHtml(timeline, { source: 'events.jsonl', campaignNames: new Map([['welcome', 'Welcome']]) });

/** The chart's lanes, one chunk of markup each. */
const lanes = (page: string) => page.slice(0, page.indexOf('</figure>')).split('<div class="lane">').slice(1);

/** The rows of the table under the person's heading. */
function tableOf(page: string, person: string): string[] {
  const start = page.indexOf(`">${escapeHtml(person)} <span class="muted">`);
  if (start === -1) throw new Error(`no section for ${person}`);
  const end = page.indexOf('</section>', start);
  return page.slice(start, end).split('<tr').slice(2);
}

const OWN_TAGS = new Set(['html', 'head', 'meta', 'title', 'style', 'body', 'header', 'main', 'h1', 'h2', 'h3', 'p', 'code', 'ul', 'li', 'span', 'figure', 'figcaption', 'div', 'section', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'time']);
const OWN_ATTRIBUTES = new Set(['lang', 'charset', 'name', 'content', 'class', 'style', 'title', 'id', 'aria-hidden', 'aria-labelledby', 'aria-label', 'tabindex', 'role', 'datetime', 'scope']);

/**
 * Every tag in the page, with its attributes' names. Each `<` must open one of them: text from the
 * simulation has none left once escaped, so anything it smuggled in would show here.
 */
function markup(page: string): { tags: Set<string>; attributes: Set<string>; strayBrackets: number } {
  const tags = new Set<string>();
  const attributes = new Set<string>();
  let count = 0;
  for (const m of page.matchAll(/<!doctype html>|<\/?([a-z][a-z0-9]*)((?:\s+[a-z-]+(?:="[^"]*")?)*)\s*>/g)) {
    count++;
    if (m[1]) tags.add(m[1]);
    for (const name of (m[2] ?? '').replace(/="[^"]*"/g, '').trim().split(/\s+/)) if (name) attributes.add(name);
  }
  return { tags, attributes, strayBrackets: (page.match(/</g) ?? []).length - count };
}

describe('renderSimulationHtml', () => {
  it('draws one lane per simulated person, in the order of the simulation, and a table of the same events per person', () => {
    expect(timeline.people).toEqual(['ana', 'ben', 'cy']);
    const chunks = lanes(html);
    expect(chunks).toHaveLength(3);
    timeline.people.forEach((person, i) => expect(chunks[i]).toContain(`<div class="row person"><div class="name">${person}</div></div>`));
    // Ana's lane holds her campaign's journey, her two sends and her completion; nobody else's.
    const ana = chunks[0] as string;
    expect(ana).toContain('campaign welcome (Welcome)');
    expect(ana.match(/class="m k-send"/g)).toHaveLength(2);
    expect(ana.match(/class="m k-enrolled"/g)).toHaveLength(1);
    expect(ana.match(/class="m k-completed"/g)).toHaveLength(1);
    expect(ana.match(/class="bar-journey"/g)).toHaveLength(1);
    expect(chunks[2]).toContain('nothing happens');
    expect(chunks[2]).not.toContain('class="m ');

    // Headings: the page, its parts, a section per person.
    expect(html).toMatch(/<html lang="en">/);
    expect(html).toContain('<h1>Rules simulation: events.jsonl</h1>');
    expect([...html.matchAll(/<h3 id="person-(\d+)">([^<]*) /g)].map((m) => m[2])).toEqual(['ana', 'ben', 'cy']);
    // The table says what the chart shows, entry for entry (and the wait read off the journey).
    const anaEntries = timeline.entries.filter((e) => e.person === 'ana');
    const rows = tableOf(html, 'ana');
    expect(rows).toHaveLength(anaEntries.length + 1);
    expect(rows.map((r) => /<td class="time"><time datetime="([^"]+)"/.exec(r)?.[1])).toEqual([
      '2026-01-05T11:00:00.000Z',
      '2026-01-05T11:00:00.000Z',
      '2026-01-05T11:00:00.000Z',
      '2026-01-07T11:00:00.000Z',
      '2026-01-07T11:00:00.000Z',
    ]);
    expect(rows[2]).toContain('waits 2d, until 2026-01-07T11:00:00Z, then sent (tips)');
    expect(html).toContain('<th scope="col">why</th>');
    expect(html).toContain('Nothing happens to this person.');
    // The chart is drawn for the eye; the tables carry the same to a screen reader.
    expect(html).toContain('<div class="grid" aria-hidden="true">');
  });

  it('gives every skip its reason, in the table and on the marker', () => {
    const skip = timeline.entries.find((e) => e.person === 'ben' && e.kind === 'skipped') as TimelineEntry;
    expect(skip.reason).toBe('no consent for email_marketing: refused: email_marketing never granted');
    const rows = tableOf(html, 'ben');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain('skipped</td><td>welcome</td><td>no consent for email_marketing: refused: email_marketing never granted</td>');
    expect(lanes(html)[1]).toContain(`title="2026-01-06T12:00:00Z skipped: welcome \u2014 ${skip.reason}"`);
  });

  it('shows what marketers and events wrote as text, never as markup', () => {
    const hostile = '<script>alert("x")</script>';
    const ruleSet = buildRuleSet({
      segments: [{ id: 'vip', name: '<img src=x onerror=alert(1)>', conditions: { trait: 'plan', exists: true } }],
      campaigns: [
        {
          id: 'welcome',
          name: hostile,
          purposes: ['email_marketing'],
          trigger: { event: { name: `Signed Up ${hostile}` } },
          steps: [{ set_trait: { name: 'plan', value: `"><b onmouseover=alert(1)>` } }, { send: { template: 'welcome' } }],
        },
      ],
    });
    const person = `"'><svg onload=alert(1)>&amp;`;
    const events = [consent(person, '2026-01-05T10:00:00Z'), track(person, `Signed Up ${hostile}`, '2026-01-05T11:00:00Z')];
    const result = run(events, ruleSet);
    expect(new Set(result.entries.map((e) => e.kind))).toEqual(new Set(['enrolled', 'trait_set', 'segment_entered', 'send', 'completed']));
    const page = renderSimulationHtml(result, {
      source: `${hostile}.jsonl`,
      campaignNames: new Map([...ruleSet.campaigns].map(([id, c]) => [id, c.file.name])),
      segmentNames: new Map([...ruleSet.segments].map(([id, s]) => [id, s.file.name])),
    });
    const { tags, attributes, strayBrackets } = markup(page);
    expect(strayBrackets).toBe(0);
    expect([...tags].filter((t) => !OWN_TAGS.has(t))).toEqual([]);
    expect([...attributes].filter((a) => !OWN_ATTRIBUTES.has(a))).toEqual([]);
    expect(page).not.toMatch(/<script|<img|<svg|<b /i);
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(page).toContain('campaign welcome (&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;)');
    expect(page).toContain('segment vip (&lt;img src=x onerror=alert(1)&gt;)');
    expect(page).toContain('plan = &quot;\\&quot;&gt;&lt;b onmouseover=alert(1)&gt;&quot;');
    expect(page).toContain('<title>Rules simulation: &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.jsonl</title>');
    // The person's id as text in the heading, the lane and every marker's title.
    const escaped = '&quot;&#39;&gt;&lt;svg onload=alert(1)&gt;&amp;amp;';
    expect(page).toContain(`<h3 id="person-1">${escaped} `);
    expect(page).toContain(`<div class="name">${escaped}</div>`);
    // Attribute values cannot be left: every quote inside one is escaped.
    for (const [, value] of page.matchAll(/title="([^"]*)"/g)) expect(value).not.toMatch(/[<>'"]/);
  });

  it('is one self-contained file: inline CSS, no script, nothing fetched', () => {
    expect(html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\ssrc=|<link|@import|url\(|<iframe|<object|<embed/i);
    expect(html).toContain('<style>');
    expect(html).toContain('<meta charset="utf-8">');
    expect(html.match(/<style>/g)).toHaveLength(1);
  });

  it('keeps text readable: every colour a marker or text is drawn in has 4.5:1 contrast or more (WCAG 2 AA)', () => {
    const luminance = (hex: string) => {
      const [r, g, b] = [1, 3, 5].map((i) => {
        const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      }) as [number, number, number];
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const contrast = (a: string, b: string) => {
      const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
      return (hi + 0.05) / (lo + 0.05);
    };
    const markers = [...html.matchAll(/\.k-([a-z_]+)\{background:(#[0-9a-f]{6})/g)].map((m) => [m[1] as string, m[2] as string] as const);
    expect(markers.map(([kind]) => kind).sort()).toEqual(['completed', 'deferred', 'enrolled', 'exited', 'segment_entered', 'segment_left', 'send', 'skipped', 'trait_set']);
    for (const [kind, colour] of markers) expect([kind, contrast(colour, '#ffffff') >= 4.5]).toEqual([kind, true]);
    const variable = (name: string) => new RegExp(`--${name}:(#[0-9a-f]{6})`).exec(html)?.[1] as string;
    for (const background of ['#ffffff', '#f6f8fa', variable('band')]) {
      expect(contrast(variable('ink'), background)).toBeGreaterThanOrEqual(4.5);
      expect(contrast(variable('muted'), background)).toBeGreaterThanOrEqual(4.5);
    }
  });

  it('marks a journey still waiting when the simulation ends', () => {
    const cut = run([consent('ana', '2026-01-05T10:00:00Z'), track('ana', 'Signed Up', '2026-01-05T11:00:00Z')], welcome, { until: '2026-01-06T11:00:00Z' });
    const { axis, lanes: laid } = layoutTimeline(cut);
    expect(axis?.end.toISOString()).toBe('2026-01-06T11:00:00.000Z');
    const track0 = laid[0]?.tracks[0];
    expect(track0?.journeys).toEqual([expect.objectContaining({ open: true, from: new Date('2026-01-05T11:00:00Z'), to: new Date('2026-01-06T11:00:00Z') })]);
    expect(track0?.waits).toEqual([expect.objectContaining({ open: true, from: new Date('2026-01-05T11:00:00Z') })]);
    const page = renderSimulationHtml(cut);
    expect(page).toContain('class="bar-journey open"');
    expect(page).toContain('waits 1d: still waiting when the simulation ends (2026-01-06T11:00:00Z)');
    expect(page).toContain('<h1>Rules simulation</h1>');
  });

  it('places markers on the axis in time order, stacking those at the same moment', () => {
    const { axis, lanes: laid } = layoutTimeline(timeline);
    expect(axis?.start.toISOString()).toBe('2026-01-05T11:00:00.000Z');
    expect(axis?.end.toISOString()).toBe('2026-01-07T11:00:00.000Z');
    expect(axis?.ticks.map((t) => t.label)).toEqual(['01-05 12:00', '01-05 18:00', '01-06 00:00', '01-06 06:00', '01-06 12:00', '01-06 18:00', '01-07 00:00', '01-07 06:00']);
    const markers = laid[0]?.tracks[0]?.markers ?? [];
    expect(markers.map((m) => [m.entry.kind, m.left, m.row])).toEqual([
      ['enrolled', 1.5, 0],
      ['send', 1.5, 1],
      ['send', 98.5, 0],
      ['completed', 98.5, 1],
    ]);
  });

  it('says so when nothing happens at all', () => {
    const empty: Timeline = { version: 'abc', from: null, until: null, people: ['zoe'], entries: [] };
    const page = renderSimulationHtml(empty);
    expect(page).toContain('Nothing happens to anyone in this simulation.');
    expect(page).toContain('Nothing happens to this person.');
    expect(page).toContain('<h3 id="person-1">zoe ');
  });

  it('formats durations by their two largest units', () => {
    expect(formatDuration(2 * 86_400_000)).toBe('2d');
    expect(formatDuration(2 * 86_400_000 + 3 * 3_600_000 + 60_000)).toBe('2d 3h');
    expect(formatDuration(35 * 60_000)).toBe('35m');
    expect(formatDuration(10 * 3_600_000 + 30 * 60_000)).toBe('10h 30m');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});

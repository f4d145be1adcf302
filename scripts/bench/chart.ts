/**
 * docs/benchmarks.svg, written by hand (no dependency): two panels drawn from a suite run.
 * - Throughput: for each figure in a unit `…/s`, a bar of the measured value, beside a grey bar of
 *   its same-run ceiling when it has one (the ratio written after the value), and the target as a
 *   red line when it is a number (`≥ 30,000 events/s`) or a multiple of the ceiling (`≥ 0.5× …`).
 * - Latency: the figures in µs, ms or s whose name says which percentile (`p50`, `p99`, `median`),
 *   grouped by what they measure (`pixel p50 latency` and `pixel p99 latency`), a bar each, with
 *   each target drawn as a red line across its own bar.
 * Every row has its own scale (the figures span five orders of magnitude): bars compare within a
 * row, the numbers across rows. Opaque white background, so it reads in GitHub's dark mode too.
 */
import type { Figure } from './results';
import { quantity, ratioOf } from './suite-report';
import type { SuiteRun } from './suite-run';

const WIDTH = 960;
const LEFT = 16;
const BAR_MAX = 600;
const FONT = "font-family=\"-apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\"";
const COLOR = { met: '#2e8b57', missed: '#d9822b', measured: '#2f6db5', ceiling: '#b5b5b5', target: '#d03030', text: '#1f2328', muted: '#59636e' };
const STAT_COLORS = ['#8db8e6', '#2f6db5', '#1b3f73', '#5a5a9e'];

const TIME_UNITS: Record<string, number> = { µs: 1e-3, us: 1e-3, ms: 1, s: 1_000 };

/** `s` cut to about `px` pixels wide at `size` (an average glyph width; there is no font metrics here), with an ellipsis. */
function fit(s: string, px: number, size = 12, bold = false): string {
  const chars = Math.floor(px / (size * (bold ? 0.6 : 0.55)));
  return s.length <= chars ? s : `${s.slice(0, Math.max(1, chars - 1))}…`;
}

/** `delayed sends: lateness…` rather than `delayed sends: delayed sends: lateness…`. */
const labelOf = (scenario: string, name: string) => (name.startsWith(`${scenario}: `) ? name : `${scenario}: ${name}`);

/** Where a bar's text starts: after the bar, or after a target line that would cross the text. */
function textX(barEnd: number, text: string, targetX: number | undefined, size = 12): number {
  const width = text.length * size * 0.6;
  return targetX !== undefined && targetX >= barEnd - 2 && targetX <= barEnd + 6 + width ? targetX + 6 : barEnd + 6;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const barColor = (f: Figure) => (f.met === true ? COLOR.met : f.met === false ? COLOR.missed : COLOR.measured);

/** A target as a number in the figure's unit: `≥ 30,000 events/s`, `≤ 1 s` (for a figure in ms), `≥ 0.5× bare route` (× the ceiling). */
export function targetValue(f: Figure): number | undefined {
  const m = /^\s*[≤≥<>]=?\s*([\d,]*\.?\d+)\s*(×|x\b)?\s*(\S+)?/.exec(f.target ?? '');
  if (!m) return undefined;
  const n = Number((m[1] as string).replace(/,/g, ''));
  if (m[2]) return f.ceiling ? n * f.ceiling.value : undefined;
  const unit = m[3];
  // `≥ 100/s` for a figure in erasures/s
  if (unit === undefined || unit === f.unit || (unit.startsWith('/') && f.unit.endsWith(unit))) return n;
  const from = TIME_UNITS[unit];
  const to = TIME_UNITS[f.unit];
  return from !== undefined && to !== undefined ? (n * from) / to : undefined;
}

interface Item {
  readonly scenario: string;
  readonly figure: Figure;
}

const STAT = /\b(p\d{2,3}(?:\.\d+)?|median|mean|max)\b/i;

function items(run: SuiteRun): Item[] {
  return run.scenarios.flatMap((o) => o.results.flatMap((s) => s.figures.map((figure) => ({ scenario: s.scenario, figure }))));
}

class Canvas {
  readonly parts: string[] = [];
  y = 0;
  text(x: number, y: number, s: string, opts: { size?: number; weight?: string; color?: string; anchor?: string } = {}): void {
    this.parts.push(
      `<text x="${x}" y="${y}" font-size="${opts.size ?? 12}"${opts.weight ? ` font-weight="${opts.weight}"` : ''} fill="${opts.color ?? COLOR.text}"${opts.anchor ? ` text-anchor="${opts.anchor}"` : ''}>${esc(s)}</text>`,
    );
  }
  rect(x: number, y: number, w: number, h: number, fill: string): void {
    this.parts.push(`<rect x="${x}" y="${y}" width="${Math.max(1, w).toFixed(1)}" height="${h}" fill="${fill}"/>`);
  }
  targetLine(x: number, y1: number, y2: number): void {
    this.parts.push(`<line x1="${x.toFixed(1)}" y1="${y1}" x2="${x.toFixed(1)}" y2="${y2}" stroke="${COLOR.target}" stroke-width="2" stroke-dasharray="4 2"/>`);
  }
}

function throughputPanel(c: Canvas, list: readonly Item[]): void {
  c.text(LEFT, (c.y += 28), 'Throughput: measured, beside the ceiling measured in the same run', { size: 15, weight: 'bold' });
  c.text(LEFT, (c.y += 18), 'bar colour: green met, orange missed, blue no target or not judged; grey: the ceiling; red dashed line: the target', { size: 11, color: COLOR.muted });
  if (list.length === 0) c.text(LEFT, (c.y += 24), 'no throughput figure in this run', { color: COLOR.muted });
  for (const { scenario, figure: f } of list) {
    const target = targetValue(f);
    const scale = Math.max(f.value, f.ceiling?.value ?? 0, target ?? 0) || 1;
    const w = (v: number) => (v / scale) * BAR_MAX;
    const label = [labelOf(scenario, f.name), f.target ? `target ${f.target}` : ''].filter(Boolean).join(' · ');
    c.text(LEFT, (c.y += 26), fit(label, WIDTH - 2 * LEFT, 12, true), { size: 12, weight: 'bold' });
    const top = c.y + 6;
    c.rect(LEFT, top, w(f.value), 16, barColor(f));
    const ratio = ratioOf(f);
    const targetX = target === undefined ? undefined : LEFT + w(target);
    const valueText = `${quantity(f.value, f.unit)}${ratio === undefined ? '' : ` = ${ratio.toFixed(2)}× the ceiling`}`;
    c.text(textX(LEFT + w(f.value), valueText, targetX), top + 12, valueText, { weight: 'bold' });
    let bottom = top + 16;
    if (f.ceiling) {
      c.rect(LEFT, bottom + 3, w(f.ceiling.value), 16, COLOR.ceiling);
      const x = LEFT + w(f.ceiling.value) + 6;
      c.text(x, bottom + 15, fit(`${quantity(f.ceiling.value, f.ceiling.unit)}: ${f.ceiling.name}`, WIDTH - x - LEFT), { color: COLOR.muted });
      bottom += 19;
    }
    if (targetX !== undefined) c.targetLine(targetX, top - 3, bottom + 3);
    c.y = bottom + 4;
  }
}

interface Group {
  readonly label: string;
  readonly unit: string;
  readonly bars: Array<{ stat: string; figure: Figure }>;
}

function latencyGroups(list: readonly Item[]): Group[] {
  const groups = new Map<string, Group>();
  for (const { scenario, figure } of list) {
    const stat = STAT.exec(figure.name)?.[1];
    if (!stat) continue;
    const what = figure.name
      .replace(STAT, '')
      .replace(/\s+/g, ' ')
      .replace(/\s+([,;:)])/g, '$1')
      .replace(/^[\s,;:]+|[\s,;:]+$/g, '');
    const key = `${scenario}\u0000${what}`;
    const group = groups.get(key) ?? { label: labelOf(scenario, what), unit: figure.unit, bars: [] };
    group.bars.push({ stat: stat.toLowerCase() === 'median' ? 'median' : stat, figure });
    groups.set(key, group);
  }
  return [...groups.values()];
}

/** A value in another time unit, converted to `unit`. */
function inUnit(value: number, from: string, to: string): number {
  const a = TIME_UNITS[from];
  const b = TIME_UNITS[to];
  return a !== undefined && b !== undefined ? (value * a) / b : value;
}

function latencyPanel(c: Canvas, groups: readonly Group[]): void {
  c.y += 16;
  c.text(LEFT, (c.y += 28), 'Latency: percentiles, against their targets', { size: 15, weight: 'bold' });
  c.text(LEFT, (c.y += 18), 'one bar a percentile (colour by verdict where the figure has a target); red dashed line: that percentile\'s target', {
    size: 11,
    color: COLOR.muted,
  });
  if (groups.length === 0) c.text(LEFT, (c.y += 24), 'no latency figure in this run', { color: COLOR.muted });
  for (const g of groups) {
    const values = g.bars.map((b) => inUnit(b.figure.value, b.figure.unit, g.unit));
    const targets = g.bars.map((b) => {
      const t = targetValue(b.figure);
      return t === undefined ? undefined : inUnit(t, b.figure.unit, g.unit);
    });
    const scale = Math.max(...values, ...targets.map((t) => t ?? 0)) || 1;
    const w = (v: number) => (v / scale) * BAR_MAX;
    const goals = g.bars.filter((b) => b.figure.target).map((b) => `${b.stat} ${b.figure.target}`);
    c.text(LEFT, (c.y += 26), fit(`${g.label}${goals.length ? ` · target ${goals.join(', ')}` : ''}`, WIDTH - 2 * LEFT, 12, true), { size: 12, weight: 'bold' });
    let top = c.y + 6;
    g.bars.forEach((b, i) => {
      const color = b.figure.met === null ? (STAT_COLORS[i] ?? COLOR.measured) : barColor(b.figure);
      const v = values[i] as number;
      const t = targets[i];
      const targetX = t === undefined ? undefined : LEFT + w(t);
      const text = `${b.stat} ${quantity(v, g.unit)}`;
      c.rect(LEFT, top, w(v), 14, color);
      c.text(textX(LEFT + w(v), text, targetX), top + 11, text);
      if (targetX !== undefined) c.targetLine(targetX, top - 2, top + 16);
      top += 17;
    });
    c.y = top + 2;
  }
}

export function chartSvg(run: SuiteRun): string {
  const all = items(run);
  const throughput = all.filter((i) => i.figure.unit.endsWith('/s'));
  const latency = latencyGroups(all.filter((i) => i.figure.unit in TIME_UNITS));
  const c = new Canvas();
  c.text(LEFT, (c.y += 26), `consentflow benchmarks: ${run.command}`, { size: 17, weight: 'bold' });
  c.text(LEFT, (c.y += 18), `${run.date.slice(0, 10)} · ${run.machine} · PostgreSQL ${run.versions.postgresql.split(' ')[0]} · Redis ${run.versions.redis}${run.quick ? ' · quick run: figures not judged' : ''}`, {
    size: 11,
    color: COLOR.muted,
  });
  throughputPanel(c, throughput);
  latencyPanel(c, latency);
  const height = Math.ceil(c.y + 20);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...c.parts,
    '</svg>',
    '',
  ].join('\n');
}

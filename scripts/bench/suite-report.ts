/**
 * The suite's summary: one row a figure (scenario, figure, value, target, ceiling, ratio, verdict),
 * printed as an aligned table and written, with the machine, versions, date and command, between
 * `<!-- bench:suite:start -->` and `<!-- bench:suite:end -->` at the top of docs/benchmarks.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Figure } from './results';
import type { SuiteRun } from './suite-run';

export type Row = readonly [scenario: string, figure: string, value: string, target: string, ceiling: string, ratio: string, verdict: string];

const HEADER: Row = ['scenario', 'figure', 'value', 'target', 'ceiling', 'ratio', 'verdict'];
const RIGHT = new Set([2, 4, 5]);

/** 13,220 / 48.9 / 1.07: three significant figures or the whole number, with thousands separators. */
export function number(n: number): string {
  const a = Math.abs(n);
  if (a >= 100) return Math.round(n).toLocaleString('en');
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** `13,220 req/s`, `46 ms`, `0.74×`: as number(), without trailing zeros after the point. */
export function quantity(value: number, unit: string): string {
  const n = number(value).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  return unit === 'x' ? `${n}×` : `${n} ${unit}`;
}

/** value ÷ ceiling, when both are in the same unit. */
export function ratioOf(f: Figure): number | undefined {
  return f.ceiling && f.ceiling.unit === f.unit && f.ceiling.value > 0 ? f.value / f.ceiling.value : undefined;
}

const verdictOf = (f: Figure) => (f.met === true ? 'met' : f.met === false ? 'missed' : '—');

function figureRow(scenario: string, f: Figure): Row {
  const ratio = ratioOf(f);
  return [
    scenario,
    f.name,
    quantity(f.value, f.unit),
    f.target ?? '—',
    f.ceiling ? `${quantity(f.ceiling.value, f.ceiling.unit)} (${f.ceiling.name})` : '—',
    ratio === undefined ? '—' : `${ratio.toFixed(2)}×`,
    verdictOf(f),
  ];
}

/** Scenarios first, in the order run (a script that did not produce figures gets one row saying so), then the ceilings. */
export function summaryRows(run: SuiteRun): Row[] {
  const rows: Row[] = [];
  for (const outcome of run.scenarios) {
    if (outcome.results.length === 0) {
      const what = outcome.status === 'ok' ? 'no figures' : outcome.status;
      rows.push([outcome.script, '—', '—', '—', '—', '—', what]);
      continue;
    }
    for (const s of outcome.results) for (const f of s.figures) rows.push(figureRow(s.scenario, f));
    if (outcome.status === 'failed') rows.push([outcome.script, '—', '—', '—', '—', '—', 'failed']);
  }
  for (const s of run.ceilings) for (const f of s.figures) rows.push(figureRow(`ceiling: ${s.scenario}`, f));
  return rows;
}

/** Lines under the table: what limits each missed figure, and why a script has no figures. */
export function noteLines(run: SuiteRun): string[] {
  const lines: string[] = [];
  for (const outcome of run.scenarios) {
    if (outcome.status !== 'ok') lines.push(`${outcome.script} (${outcome.file}): ${outcome.status}${outcome.reason ? `: ${outcome.reason}` : ''}`);
    for (const s of outcome.results) {
      for (const f of s.figures) if (f.met === false) lines.push(`${s.scenario}, ${f.name}: missed (${quantity(f.value, f.unit)}, target ${f.target ?? '—'})${f.note ? `; ${f.note}` : ''}`);
    }
  }
  return lines;
}

/** Columns padded to their widest cell, for the terminal. */
export function consoleTable(rows: readonly Row[]): string {
  const all = [HEADER, ...rows];
  const widths = HEADER.map((_, i) => Math.max(...all.map((r) => [...r[i]!].length)));
  const line = (r: Row) => r.map((cell, i) => (RIGHT.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(HEADER), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function markdownTable(rows: readonly Row[]): string {
  const align = HEADER.map((_, i) => (RIGHT.has(i) ? '---:' : '---'));
  return [HEADER, align, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n');
}

/** The docs section, markers included; `chart` and `results` are paths relative to docs/. */
export function docsSection(run: SuiteRun, chart: string, results: string): string {
  const ran = run.scenarios.filter((s) => s.status === 'ok').length;
  return [
    '<!-- bench:suite:start -->',
    '## The suite (`npm run bench`)',
    '',
    `Measured ${run.date.slice(0, 16).replace('T', ' ')} UTC on ${run.machine}; PostgreSQL ${run.versions.postgresql}, Redis ${run.versions.redis}; ` +
      `\`${run.command}\` (${Math.round(run.seconds)} s${run.commit ? `, commit ${run.commit}` : ''}). ` +
      `The ceilings (scripts/bench/ceilings.ts) were measured first, then each scenario's script ran alone, one after another (${ran} of ${run.scenarios.length} produced figures); ` +
      'a ratio is the figure over the ceiling named beside it, measured in the same run. ' +
      `Every figure, ceiling and version is in [bench/results.json](${results}); each scenario's own section below has the details.`,
    '',
    `![Throughput of each scenario beside its same-run ceiling, and latency against its target](${chart})`,
    '',
    markdownTable(summaryRows(run)),
    '',
    ...noteLines(run).map((l) => `- ${l}`),
    '<!-- bench:suite:end -->',
  ].join('\n');
}

const START = '<!-- bench:suite:start -->';
const END = '<!-- bench:suite:end -->';

/**
 * Replaces the suite's section of `docPath`; the first time, inserts it at the top: before the first
 * `## ` heading after the title and intro (`## What limits ingest today` today).
 */
export function writeSuiteSection(docPath: string, section: string): void {
  const existing = fs.existsSync(docPath) ? fs.readFileSync(docPath, 'utf8') : '# Benchmarks\n';
  let updated: string;
  const start = existing.indexOf(START);
  const end = existing.indexOf(END);
  if (start >= 0 && end > start) {
    updated = existing.slice(0, start) + section + existing.slice(end + END.length);
  } else {
    const heading = existing.search(/^## /m);
    updated = heading >= 0 ? `${existing.slice(0, heading)}${section}\n\n${existing.slice(heading)}` : `${existing.trimEnd()}\n\n${section}\n`;
  }
  fs.mkdirSync(path.dirname(docPath), { recursive: true });
  fs.writeFileSync(docPath, updated);
}

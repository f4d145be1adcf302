import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FIGURES_DIR, type FigureRow } from './harness/figures';

const fmtMs = (ms: number | null) => (ms === null ? '—' : ms < 1_000 ? `${ms} ms` : `${(ms / 1_000).toFixed(1)} s`);

/**
 * Every scenario's row gathered into results.json and printed as the table docs/reliability.md
 * holds. (Not the default suite's teardown: it unlinks every `{cft-*` key in the shared Redis,
 * other people's running tests' included; each fault scenario removes its own `{cff-…}` keys.)
 */
export default async function globalTeardown(): Promise<void> {  if (!fs.existsSync(FIGURES_DIR)) return;
  const rows = fs
    .readdirSync(FIGURES_DIR)
    .filter((f) => f.startsWith('row-'))
    // By scenario number, as the issue lists them (row-1-…, row-2-…, …, row-10-…).
    .sort((a, b) => parseInt(a.slice(4), 10) - parseInt(b.slice(4), 10) || a.localeCompare(b))
    .map((f) => JSON.parse(fs.readFileSync(path.join(FIGURES_DIR, f), 'utf8')) as FigureRow & { id: string });
  const results = {
    measuredAt: new Date().toISOString(),
    machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    rows,
  };
  fs.writeFileSync(path.join(FIGURES_DIR, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  const table = [
    '| scenario | load | fault | lost | duplicated | recovery time |',
    '| --- | --- | --- | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.scenario} | ${r.load} | ${r.fault} | ${r.lost} | ${r.duplicated} | ${fmtMs(r.recoveryMs)} |`),
  ].join('\n');
  process.stdout.write(`\nfault figures (${path.join(FIGURES_DIR, 'results.json')}):\n${table}\n`);
}

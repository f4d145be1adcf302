import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where each scenario writes its row, and where the run's results.json goes. */
export const FIGURES_DIR = process.env.FAULTS_RESULTS_DIR || path.join(os.tmpdir(), 'consentflow-faults');

/** One row of docs/reliability.md's table, with the counts behind it. */
export interface FigureRow {
  /** e.g. "1 kill -9 of workers". */
  readonly scenario: string;
  readonly load: string;
  readonly fault: string;
  /** Accepted (or due) but never stored (or sent). */
  readonly lost: number;
  /** Stored (or sent) more than once. */
  readonly duplicated: number;
  /** From the fault (or its end) to the state the scenario waits for; null when not applicable. */
  readonly recoveryMs: number | null;
  /** Every count the scenario took: accepted, stored, emails due, sent, duplicated… */
  readonly counts: Readonly<Record<string, number | string | boolean>>;
  readonly durationMs: number;
}

export function recordFigure(id: string, row: FigureRow): void {
  fs.mkdirSync(FIGURES_DIR, { recursive: true });
  const full = { id, ...row, at: new Date().toISOString() };
  fs.writeFileSync(path.join(FIGURES_DIR, `row-${id}.json`), `${JSON.stringify(full, null, 2)}\n`);
  process.stdout.write(`fault figure ${id}: ${JSON.stringify(full)}\n`);
}

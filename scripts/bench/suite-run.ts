/**
 * What the suite records of a run (bench/results.json): the machine and versions, and each script's
 * outcome with the ScenarioResults it wrote (scripts/bench/results.ts). Also the reading of a
 * results file, which checks its shape: a script that writes something else broke the contract.
 */
import fs from 'node:fs';
import type { Figure, ScenarioResults } from './results';

export type ScriptStatus = 'ok' | 'failed' | 'not run' | 'skipped' | 'no results';

export interface ScriptOutcome {
  /** `ingest`, `ceilings`… */
  readonly script: string;
  /** scripts/bench/NAME.ts */
  readonly file: string;
  readonly status: ScriptStatus;
  /** Why it was not run, skipped, failed, or wrote no results. */
  readonly reason?: string;
  readonly seconds: number;
  readonly results: readonly ScenarioResults[];
}

export interface SuiteRun {
  readonly date: string;
  readonly command: string;
  readonly quick: boolean;
  readonly machine: string;
  readonly versions: { readonly node: string; readonly postgresql: string; readonly redis: string };
  readonly commit?: string;
  readonly seconds: number;
  /** What scripts/bench/ceilings.ts measured (every figure `met: null`). */
  readonly ceilings: readonly ScenarioResults[];
  /** Every other script, in the order run, with its results. */
  readonly scenarios: readonly ScriptOutcome[];
}

const isFigure = (f: unknown): f is Figure =>
  typeof f === 'object' &&
  f !== null &&
  typeof (f as Figure).name === 'string' &&
  typeof (f as Figure).value === 'number' &&
  typeof (f as Figure).unit === 'string' &&
  ((f as Figure).met === null || typeof (f as Figure).met === 'boolean');

const isScenario = (s: unknown): s is ScenarioResults =>
  typeof s === 'object' &&
  s !== null &&
  typeof (s as ScenarioResults).scenario === 'string' &&
  typeof (s as ScenarioResults).seconds === 'number' &&
  Array.isArray((s as ScenarioResults).figures) &&
  (s as ScenarioResults).figures.every(isFigure);

/** The ScenarioResults[] a script wrote to `file`; undefined when it wrote none; throws when it is not that shape. */
export function readResults(file: string): ScenarioResults[] | undefined {
  if (!fs.existsSync(file)) return undefined;
  const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(parsed) || !parsed.every(isScenario)) throw new Error(`${file} is not ScenarioResults[] (scripts/bench/results.ts)`);
  return parsed;
}

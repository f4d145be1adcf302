/**
 * The contract between each benchmark script and the suite (`npm run bench`, scripts/bench/suite.ts):
 * a script run with `--results FILE` writes one ScenarioResults there, beside its own table and
 * docs section. The suite gathers them into bench/results.json, the summary table of
 * docs/benchmarks.md and the chart.
 */
import fs from 'node:fs';

export interface Figure {
  /** What was measured: `pixel requests/s`, `p99 latency`. */
  readonly name: string;
  readonly value: number;
  /** `req/s`, `events/s`, `ms`, `µs`, `MB`, `s`, `x` (a ratio). */
  readonly unit: string;
  /** The target as written: `≥ 0.5× bare route`, `≤ 20 ms`. */
  readonly target?: string;
  /** The ceiling measured in the same run, when the target is relative to one. */
  readonly ceiling?: { readonly name: string; readonly value: number; readonly unit: string };
  /** Whether the target is met; null: no target, or not judged in a quick run. */
  readonly met: boolean | null;
  /** What limits it, when missed; anything a reader needs to read the figure right. */
  readonly note?: string;
}

export interface ScenarioResults {
  /** `pixel ingest`, `batched POST`, `end to end`… */
  readonly scenario: string;
  readonly quick: boolean;
  /** Seconds the scenario took, set-up included. */
  readonly seconds: number;
  readonly figures: readonly Figure[];
}

/** The value of `--results FILE` in argv, if given. */
export function resultsPath(argv: readonly string[] = process.argv): string | undefined {
  const i = argv.indexOf('--results');
  return i >= 0 ? argv[i + 1] : undefined;
}

/** Writes the results where `--results` asked (nothing when it was not given). */
export function writeResults(results: ScenarioResults | readonly ScenarioResults[], argv: readonly string[] = process.argv): void {
  const file = resultsPath(argv);
  if (!file) return;
  fs.writeFileSync(file, `${JSON.stringify(Array.isArray(results) ? results : [results], null, 2)}\n`);
}

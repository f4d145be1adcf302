import type { SkipReason } from './checks';

/**
 * What an import did, row by row where a row did not go in. Never a value from the file: rows are
 * named by their line (the header is line 1; a row whose quoted field spans lines is named by the
 * line it starts on), so the report can be kept and shared without the personal data it is about.
 */
export interface ImportReport {
  readonly file: string;
  readonly source: { readonly name: string; id: string | null; created: boolean };
  readonly dryRun: boolean;
  readonly consent: { readonly purposes: readonly string[]; readonly notice: { readonly id: string; readonly version: number } } | null;
  /** Data rows read (the header and blank lines are not rows). */
  rows: number;
  /** Rows written (or, on a dry run, that would be). */
  accepted: number;
  /** People who did not exist before this import (null on a dry run, which resolves nobody). */
  newPeople: number | null;
  skipped: SkippedRow[];
  invalid: InvalidRow[];
  durationMs: number;
  /** Set when the file as a whole was refused (its header): why. Nothing was written. */
  refused?: string;
  /** Set when the import stopped before the end of the file: why. Batches committed before stay. */
  interrupted?: string;
}

export interface SkippedRow {
  readonly line: number;
  readonly reason: SkipReason;
  readonly detail?: string;
}

export interface InvalidRow {
  readonly line: number;
  readonly column?: string;
  readonly message: string;
}

export const SKIP_REASONS: Readonly<Record<SkipReason, string>> = {
  erased: 'erased (GDPR Art. 17): the person asked to be forgotten',
  suppressed: 'on the suppression list',
  objected: 'objected (GDPR Art. 21)',
  withdrawn: 'withdrew the consent this import would grant (GDPR Art. 7(3))',
  already_imported: 'already imported: the same row, from this source, with the same consent',
  duplicate_row: 'the same as an earlier row of this file',
};

export function newReport(file: string, sourceName: string, dryRun: boolean, consent: ImportReport['consent']): ImportReport {
  return { file, source: { name: sourceName, id: null, created: false }, dryRun, consent, rows: 0, accepted: 0, newPeople: dryRun ? null : 0, skipped: [], invalid: [], durationMs: 0 };
}

/** Skipped rows counted by reason (and detail), in a stable order. */
export function skippedByReason(report: ImportReport): Array<{ reason: SkipReason; detail?: string; count: number; lines: number[] }> {
  const groups = new Map<string, { reason: SkipReason; detail?: string; count: number; lines: number[] }>();
  for (const s of report.skipped) {
    // A duplicate's detail names the row it repeats: listed per row, not a group of its own.
    const detail = s.reason === 'duplicate_row' ? undefined : s.detail;
    const key = `${s.reason}\u0000${detail ?? ''}`;
    const group = groups.get(key) ?? { reason: s.reason, ...(detail !== undefined ? { detail } : {}), count: 0, lines: [] };
    group.count++;
    group.lines.push(s.line);
    groups.set(key, group);
  }
  const order = Object.keys(SKIP_REASONS);
  return [...groups.values()].sort((a, b) => order.indexOf(a.reason) - order.indexOf(b.reason) || (a.detail ?? '').localeCompare(b.detail ?? ''));
}

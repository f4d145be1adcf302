import fs from 'node:fs';
import type { ConsentChange } from '../../schemas/consent';
import type { Keys } from '../config';
import type { PurposeCatalog } from '../consent/purposes';
import type { Databases } from '../db/connect';
import type { BatchDeps } from '../events/process-batch';
import type { PropertiesPolicy } from '../privacy/properties-policy';
import { CsvParser, type CsvRecord } from './csv';
import { checkHeader, checkRecord } from './csv-rows';
import { importMessageId } from './events';
import { type ImportAudit, importBatch, type PendingRow } from './import-batch';
import { type ImportReport, newReport } from './report';
import { findOwnSource, type OwnSource, ownSource } from './sources';

/**
 * `consentflow import FILE.csv`: people from another system, read as a stream and written a batch
 * at a time through the events worker's own code. Memory holds one batch, plus a 29-character key
 * per row for the repeated-row check (about 100 bytes a row: 100 MB for a million rows).
 * The header is checked before anything is written; a bad row is reported with its line and the
 * others go in; a re-run of the same file writes nothing new.
 */

export const DEFAULT_BATCH_SIZE = 1_000;

export interface ImportDeps {
  readonly databases: Databases;
  readonly keys: Keys;
  readonly policy: PropertiesPolicy;
  readonly catalog: PurposeCatalog;
  readonly batch: BatchDeps;
}

export interface ImportOptions {
  readonly file: string;
  /** `import:NAME`. */
  readonly sourceName: string;
  readonly consent?: ConsentChange | undefined;
  readonly dryRun: boolean;
  readonly batchSize?: number;
  /** Called as the file is read (for a progress bar). */
  readonly onProgress?: (progress: { bytesRead: number; totalBytes: number; rows: number }) => void;
  readonly audit?: ImportAudit;
}

export type ImportResult =
  | { readonly ok: true; readonly report: ImportReport }
  /** The file as a whole cannot be imported (its header); nothing was written. */
  | { readonly ok: false; readonly message: string; readonly report: ImportReport };

/** An import stopped part-way (the database went away): the report of what was committed until then. */
export class ImportInterrupted extends Error {
  override readonly name = 'ImportInterrupted';
  constructor(
    readonly report: ImportReport,
    cause: unknown,
  ) {
    super(`the import stopped after ${report.rows} rows read: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export async function runImport(deps: ImportDeps, options: ImportOptions): Promise<ImportResult> {
  const started = Date.now();
  const consent = options.consent;
  const report = newReport(options.file, options.sourceName, options.dryRun, consent?.notice ? { purposes: consent.grant, notice: { id: consent.notice.id, version: consent.notice.version } } : null);
  const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  let source: OwnSource | undefined;
  let sourceLooked = false;
  const ctx = {
    databases: deps.databases,
    keys: deps.keys,
    catalog: deps.catalog,
    batch: deps.batch,
    consent,
    dryRun: options.dryRun,
    at: new Date(),
    // Created with the first batch that writes, so a file refused for its header leaves no trace.
    source: async () => {
      if (source || (options.dryRun && sourceLooked)) return source;
      sourceLooked = true;
      source = options.dryRun ? await findOwnSource(deps.databases.db, options.sourceName) : await ownSource(deps.databases.db, options.sourceName);
      return source;
    },
    ...(options.audit ? { audit: options.audit } : {}),
  };
  const totalBytes = (await fs.promises.stat(options.file)).size;
  const parser = new CsvParser();
  let columns: readonly string[] | undefined;
  let refusal: string | undefined;
  let pending: PendingRow[] = [];
  // Identical rows of one file: the first goes in, the others are reported (each would be a duplicate receipt).
  const firstLineOf = new Map<string, number>();

  const take = (record: CsvRecord): void => {
    if (!columns) {
      const header = checkHeader(deps.policy, record);
      if (header.ok) columns = header.columns;
      else refusal = header.message;
      return;
    }
    report.rows++;
    const row = checkRecord(deps.policy, columns, record);
    if (!row.ok) {
      report.invalid.push({ line: row.line, ...(row.column !== undefined ? { column: row.column } : {}), message: row.message });
      return;
    }
    const messageId = importMessageId(deps.keys.pseudonym, options.sourceName, consent, row.person);
    const first = firstLineOf.get(messageId);
    if (first !== undefined) {
      report.skipped.push({ line: row.line, reason: 'duplicate_row', detail: `same as line ${first}` });
      return;
    }
    firstLineOf.set(messageId, row.line);
    pending.push({ line: row.line, person: row.person, messageId });
  };
  const flush = async (): Promise<void> => {
    const rows = pending;
    pending = [];
    await importBatch(ctx, rows, report);
  };

  // Chunks of 64 KB (about a thousand rows of a contact list): the progress moves as rows are
  // written, not as the file is read ahead.
  const stream = fs.createReadStream(options.file, { encoding: 'utf8', highWaterMark: 64 * 1024 });
  let bytesDone = 0;
  try {
    for await (const chunk of stream) {
      for (const record of parser.push(chunk as string)) {
        take(record);
        if (refusal !== undefined) break;
        if (pending.length >= batchSize) await flush();
      }
      if (refusal !== undefined) break;
      bytesDone += Buffer.byteLength(chunk as string);
      options.onProgress?.({ bytesRead: bytesDone, totalBytes, rows: report.rows });
    }
    if (refusal === undefined) {
      for (const record of parser.end()) take(record);
      const empty = columns || refusal !== undefined ? undefined : checkHeader(deps.policy, undefined);
      if (empty && !empty.ok) refusal = empty.message;
    }
    if (refusal === undefined) await flush();
  } catch (err) {
    report.interrupted = err instanceof Error ? err.message : String(err);
    report.durationMs = Date.now() - started;
    throw new ImportInterrupted(finish(report), err);
  } finally {
    stream.destroy();
  }
  report.durationMs = Date.now() - started;
  if (refusal !== undefined) {
    report.refused = refusal;
    return { ok: false, message: refusal, report: finish(report) };
  }
  return { ok: true, report: finish(report) };
}

function finish(report: ImportReport): ImportReport {
  report.skipped.sort((a, b) => a.line - b.line);
  report.invalid.sort((a, b) => a.line - b.line);
  return report;
}

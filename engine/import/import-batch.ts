import type { Transaction } from 'kysely';
import type { ConsentChange } from '../../schemas/consent';
import type { Keys } from '../config';
import type { PurposeCatalog } from '../consent/purposes';
import type { Databases } from '../db/connect';
import type { Database } from '../db/types';
import { type BatchDeps, type BatchWrites, processEventBatch } from '../events/process-batch';
import { receiptMessageId, storedMessageId } from '../events/rows';
import { skipsOf } from './checks';
import { personEvent } from './events';
import type { Person } from './person';
import type { ImportReport } from './report';
import type { OwnSource } from './sources';

/** Writes one audit entry: the target names the source (`source:<id>`), the detail counts, never a person. */
export type ImportAudit = (trx: Transaction<Database>, entry: { readonly target: string; readonly detail: Record<string, unknown> }) => Promise<void>;

/** A valid row waiting for its batch. */
export interface PendingRow {
  readonly line: number;
  readonly person: Person;
  readonly messageId: string;
}

export interface BatchContext {
  readonly databases: Databases;
  readonly keys: Keys;
  readonly catalog: PurposeCatalog;
  readonly batch: BatchDeps;
  readonly consent: ConsentChange | undefined;
  readonly dryRun: boolean;
  /** When the rows were acquired: one time for the whole import. */
  readonly at: Date;
  /** The import's source: found or created at the first batch (a dry run creates none). */
  readonly source: () => Promise<OwnSource | undefined>;
  /** Appends the audit entry of a batch, in its transaction (writing personal data is audited). */
  readonly audit?: ImportAudit;
}

/** The rows of this source already imported: their receipts exist (the events worker's idempotency). */
async function importedBefore(databases: Databases, keys: Keys, sourceId: string, messageIds: readonly string[]): Promise<Set<string>> {
  if (messageIds.length === 0) return new Set();
  const byReceipt = new Map(messageIds.map((id) => [receiptMessageId(keys.pseudonym, id), id]));
  const rows = await databases.db
    .selectFrom('app.event_receipts')
    .select('message_id')
    .where('source_id', '=', sourceId)
    .where('message_id', 'in', [...byReceipt.keys()])
    .execute();
  return new Set(rows.map((r) => byReceipt.get(r.message_id) as string));
}

/**
 * One batch of rows: the checks (suppression, erasure, objections, already imported), then one
 * call of the events worker's batch processing, which writes the batch in one transaction (two with
 * a separate vault database, the vault first, idempotently): a crash leaves every row of the batch
 * written or none, and a re-run finds the written ones already imported.
 */
export async function importBatch(ctx: BatchContext, rows: readonly PendingRow[], report: ImportReport): Promise<void> {
  if (rows.length === 0) return;
  const skips = await skipsOf(ctx.databases, ctx.keys, ctx.catalog, rows.map((r) => r.person), ctx.consent?.grant ?? []);
  const source = await ctx.source();
  if (source) {
    report.source.id = source.id;
    report.source.created ||= source.created;
  }
  const already = source ? await importedBefore(ctx.databases, ctx.keys, source.id, rows.map((r) => r.messageId)) : new Set<string>();
  const todo: PendingRow[] = [];
  rows.forEach((row, i) => {
    const skip = skips[i];
    if (skip) report.skipped.push({ line: row.line, ...skip });
    else if (already.has(row.messageId)) report.skipped.push({ line: row.line, reason: 'already_imported' });
    else todo.push(row);
  });
  if (ctx.dryRun || todo.length === 0) {
    if (ctx.dryRun) report.accepted += todo.length;
    return;
  }
  if (!source) throw new Error('an import that writes needs its source');

  const events = todo.map((row) =>
    personEvent({
      person: row.person,
      sourceId: source.id,
      messageId: row.messageId,
      at: ctx.at,
      consent: ctx.consent ? { ...ctx.consent, sourceRef: `${source.name}, line ${row.line}` } : undefined,
    }),
  );
  // What each transaction wrote, as it was about to commit. A retried transaction writes the same
  // keys again; one that rolled back did so before this hook (it runs last).
  const written = new Map<string, string | null>();
  let created = 0;
  const record = async (trx: Transaction<Database>, writes: BatchWrites) => {
    writes.events.forEach((e, i) => written.set(e.messageId, writes.profileIds[i] ?? null));
    created += writes.created.size;
    await ctx.audit?.(trx, {
      target: `source:${source.id}`,
      detail: { source: source.name, rows: writes.events.length, newPeople: writes.created.size, lines: `${todo[0]?.line}-${todo[todo.length - 1]?.line}` },
    });
  };
  const outcome = await processEventBatch(ctx.batch, events, { inTransaction: record });
  if (report.newPeople !== null) report.newPeople += created;

  const refused = new Map<string, string>();
  if (outcome.rejected > 0) {
    const stored = events.map((e) => storedMessageId(e));
    const rejections = await ctx.databases.db
      .selectFrom('app.event_rejections')
      .select(['message_id', 'reason'])
      .where('source_id', '=', source.id)
      .where('message_id', 'in', stored)
      .execute();
    for (const r of rejections) refused.set(r.message_id, r.reason);
  }
  todo.forEach((row, i) => {
    const event = events[i];
    if (!event) return;
    if (written.has(row.messageId)) {
      // No profile: an erasure of this person landed between the checks and the write (its tombstone won).
      if (written.get(row.messageId) === null) report.skipped.push({ line: row.line, reason: 'erased', detail: 'erasure tombstone' });
      else report.accepted++;
      return;
    }
    const reason = refused.get(storedMessageId(event));
    if (reason !== undefined) report.invalid.push({ line: row.line, message: `PostgreSQL refused a value of this row (${reason}); nothing of it was written` });
    // Neither written nor refused: another import of the same row committed it first.
    else report.skipped.push({ line: row.line, reason: 'already_imported' });
  });
}

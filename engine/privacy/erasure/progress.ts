import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../../db/types';

/**
 * Recording an erasure's progress: after each step, its number and what the next steps need, in
 * app.erasure_requests (engine/privacy/erasure/work.ts), so a crash resumes at the step after it.
 */

type Db = Kysely<Database> | Transaction<Database>;

export async function saveStep(db: Db, id: string, step: number, set: Record<string, unknown>): Promise<void> {
  await db.updateTable('app.erasure_requests').set({ ...set, step, updated_at: new Date() }).where('id', '=', id).execute();
}

/** The request's json columns a step may record. */
export type ProgressColumn = 'work' | 'counts' | 'subject_sealed' | 'webhooks' | 'verification';

/**
 * The same step recorded for many requests in one statement (grouped erasures), each with its own
 * values: the rows must all set the same columns, as JSON text.
 */
export async function saveSteps(db: Db, step: number, rows: ReadonlyArray<{ readonly id: string } & Partial<Record<ProgressColumn, string>>>): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0] as object).filter((k): k is ProgressColumn => k !== 'id');
  const arrays = columns.map((c) => sql`, ${rows.map((r) => r[c] ?? null)}::text[]`);
  const sets = columns.map((c) => sql`, ${sql.ref(c)} = v.${sql.ref(c)}::jsonb`);
  await sql`update app.erasure_requests r set step = ${step}, updated_at = now() ${sql.join(sets, sql``)}
    from unnest(${rows.map((r) => r.id)}::uuid[] ${sql.join(arrays, sql``)}) as v(id ${sql.raw(columns.map((c) => `, ${c}`).join(''))})
    where r.id = v.id`.execute(db);
}

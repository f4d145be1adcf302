import { sql } from 'kysely';
import type { Services } from '../../../engine/runtime/services';

/** What the engine keeps for one source: stored events, anonymous counts, profiles, ledger rows. */

export async function storedEvents(services: Services, sourceId: string): Promise<Array<{ type: string; name: string | null; profile_id: string | null }>> {
  const { rows } = await sql<{ type: string; name: string | null; profile_id: string | null }>`
    select type, name, profile_id::text from app.events where source_id = ${sourceId} order by occurred_at`.execute(services.databases.db);
  return rows;
}

export async function eventCounts(services: Services, sourceId: string): Promise<Record<string, number>> {
  const { rows } = await sql<{ type: string; name: string; count: string }>`
    select type, name, count::text from app.event_counts where source_id = ${sourceId}`.execute(services.databases.db);
  return Object.fromEntries(rows.map((r) => [`${r.type}:${r.name}`, Number(r.count)]));
}

export async function profileCount(services: Services, sourceId: string): Promise<number> {
  const { rows } = await sql<{ n: string }>`select count(*)::text as n from app.profiles where source_id = ${sourceId}`.execute(services.databases.db);
  return Number(rows[0]?.n ?? 0);
}

export interface LedgerRow {
  readonly purpose: string;
  readonly decision: string;
  readonly method: string;
  readonly source_kind: string;
  readonly source_ref: string | null;
  readonly notice_id: string | null;
  readonly notice_version: number | null;
  readonly notice_hash: string | null;
}

export async function ledgerRows(services: Services, sourceId: string): Promise<LedgerRow[]> {
  const { rows } = await sql<LedgerRow>`
    select purpose, decision, method, source_kind, source_ref, notice_id, notice_version, encode(notice_hash, 'hex') as notice_hash
    from app.consent_ledger where source_id = ${sourceId} order by id`.execute(services.databases.db);
  return rows;
}

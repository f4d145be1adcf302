import { receiptMessageId } from '../../../engine/events/rows';
import { scrubText } from '../../../engine/privacy/scrub-text';
import { waitFor } from '../../support/wait';
import type { FaultCluster } from './cluster';

/** What the stores hold of a scenario's work, for its row and for a failure's message. */
export async function snapshot(cluster: FaultCluster): Promise<Record<string, unknown>> {
  const sends = await cluster.rows<{ campaign_id: string; state: string; n: string }>(
    'select campaign_id, state, count(*)::text as n from app.scheduled_sends group by 1, 2 order by 1, 2',
  );
  const queues: Record<string, unknown> = {};
  for (const q of ['events', 'email', 'broadcasts', 'journeys']) {
    const c = await cluster.jobCounts(q);
    queues[q] = Object.fromEntries(Object.entries(c).filter(([, n]) => n > 0));
  }
  return {
    receipts: await cluster.number('select count(*) from app.event_receipts'),
    events: await cluster.number('select count(*) from app.events'),
    profiles: await cluster.number('select count(*) from app.profiles'),
    enrolments: await cluster.number('select count(*) from app.enrolments'),
    sends: Object.fromEntries(sends.map((r) => [`${r.campaign_id}:${r.state}`, Number(r.n)])),
    unrelayedOutbox: await cluster.number('select count(*) from app.outbox where relayed_at is null'),
    queues,
  };
}

/** Event message ids stored more than once, and those of `expected` never stored. */
export async function eventIntegrity(cluster: FaultCluster, expected: Iterable<string>): Promise<{ stored: number; distinct: number; lost: string[]; duplicated: number }> {
  const rows = await cluster.rows<{ message_id: string; n: string }>(
    'select message_id, count(*)::text as n from app.events where source_id = $1 group by message_id',
    [cluster.sourceId],
  );
  const counted = await cluster.rows<{ n: string }>('select coalesce(sum(count), 0)::text as n from app.event_counts where source_id = $1', [cluster.sourceId]);
  const have = new Map(rows.map((r) => [r.message_id, Number(r.n)]));
  const lost = [...expected].filter((id) => !have.has(id));
  let duplicated = 0;
  let stored = 0;
  for (const n of have.values()) {
    stored += n;
    if (n > 1) duplicated += n - 1;
  }
  // Events kept only as anonymous counts have no row to find by id: none are expected here.
  const anonymous = Number(counted[0]?.n ?? 0);
  return { stored: stored + anonymous, distinct: have.size, lost, duplicated };
}

/** waitFor, and on timeout a message with the stores' state (and `extra`), to tell where work stopped. */
export async function waitOrExplain<T>(
  cluster: FaultCluster,
  check: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs: number,
  extra: () => Record<string, unknown> | Promise<Record<string, unknown>> = () => ({}),
): Promise<T> {
  try {
    return await waitFor(check, { timeoutMs, what });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${JSON.stringify({ ...(await extra()), ...(await snapshot(cluster).catch((e: Error) => ({ snapshot: e.message }))) }, null, 1)}`);
  }
}

/**
 * Of `expected` message ids, those the events worker never processed: no receipt (app.event_receipts
 * keeps a keyed hash of each messageId it processed, stored or counted).
 */
export async function unprocessed(cluster: FaultCluster, expected: Iterable<string>): Promise<string[]> {
  const key = Buffer.from(cluster.env.PSEUDONYM_KEY as string, 'base64');
  const have = new Set((await cluster.rows<{ message_id: string }>('select message_id from app.event_receipts where source_id = $1', [cluster.sourceId])).map((r) => r.message_id));
  return [...expected].filter((id) => !have.has(receiptMessageId(key, scrubText(id))));
}

/** Ids like `k-p12-e3` grouped as `k-p12..p20` runs, for messages. */
export function describeIds(ids: readonly string[]): string {
  if (ids.length === 0) return '(none)';
  return `${ids.length}: ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ` … ${ids[ids.length - 1]}` : ''}`;
}

/**
 * Effects recorded twice for one person: consent ledger rows per purpose, enrolments and sends per
 * campaign (the groups with more than one row; every scenario expects 0 of each).
 */
export async function effectDuplicates(cluster: FaultCluster): Promise<{ ledgerDuplicates: number; enrolDuplicates: number; sendDuplicates: number }> {
  const groups = (table: string, columns: string) =>
    cluster.number(`select count(*) from (select ${columns} from ${table} group by ${columns} having count(*) > 1) d`);
  return {
    ledgerDuplicates: await groups('app.consent_ledger', 'profile_id, purpose'),
    enrolDuplicates: await groups('app.enrolments', 'campaign_id, profile_id'),
    sendDuplicates: await groups('app.scheduled_sends', 'campaign_id, profile_id'),
  };
}

import type { Logger } from '../log/logger';
import type { Databases } from '../db/connect';
import type { Queues } from '../queues/producer';
import { relayOutbox } from './outbox';

/** Most rows one relay claims and adds in one pipelined round trip (a broadcast page's, whole). */
const RELAY_MAX = 5_000;
const RELAY_MIN = 500;

/**
 * After a commit that wrote outbox rows: relay them now. A failure (Redis down) is logged, not
 * thrown: the rows stay in PostgreSQL and the rules tick relays them later.
 */
export async function relayAfterCommit(deps: { databases: Databases; queues: Queues; log: Logger }, written: number): Promise<void> {
  if (written <= 0) return;
  try {
    // What this commit wrote goes in one relay (a broadcast page: one addBulk for the whole page),
    // not the whole backlog of every writer: at most the rows written. Pruning old rows is left to
    // the reconciler's relay.
    const limit = Math.min(RELAY_MAX, Math.max(RELAY_MIN, written));
    let relayed = 0;
    for (;;) {
      const n = await relayOutbox(deps.databases.db, deps.queues, new Date(), { limit, prune: false });
      relayed += n;
      if (n < limit || relayed >= written) break;
    }
  } catch (err) {
    deps.log.warn({ err }, 'outbox relay failed; the rules tick relays it later');
  }
}

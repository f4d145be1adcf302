import type { Logger } from '../log/logger';
import type { Databases } from '../db/connect';
import type { Queues } from '../queues/producer';
import { relayOutbox } from './outbox';

/**
 * After a commit that wrote outbox rows: relay them now. A failure (Redis down) is logged, not
 * thrown: the rows stay in PostgreSQL and the rules tick relays them later.
 */
export async function relayAfterCommit(deps: { databases: Databases; queues: Queues; log: Logger }, written: number): Promise<void> {
  if (written <= 0) return;
  try {
    // Until what this commit wrote is out (a broadcast page writes more than one relay takes),
    // not the whole backlog of every writer: at most the rows written, in relays of 500.
    let relayed = 0;
    for (;;) {
      const n = await relayOutbox(deps.databases.db, deps.queues);
      relayed += n;
      if (n < RELAY_LIMIT || relayed >= written) break;
    }
  } catch (err) {
    deps.log.warn({ err }, 'outbox relay failed; the rules tick relays it later');
  }
}

const RELAY_LIMIT = 500;

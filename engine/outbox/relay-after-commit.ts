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
  await relayOutbox(deps.databases.db, deps.queues).catch((err: unknown) =>
    deps.log.warn({ err }, 'outbox relay failed; the rules tick relays it later'),
  );
}

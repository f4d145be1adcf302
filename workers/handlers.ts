import type { QueueName } from '../engine/queues/catalog';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';

export type HandlerRegistry = { readonly [Q in QueueName]?: (services: Services) => JobHandlers<Q> };

/**
 * Which engine piece handles each queue. A queue of the catalog with no entry here has no worker in
 * this version (the events worker arrives with ingestion); `worker --queues` refuses it by name.
 */
export const HANDLERS: HandlerRegistry = {};

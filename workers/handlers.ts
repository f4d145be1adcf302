import type { QueueName } from '../engine/queues/catalog';
import type { JobHandlers } from '../engine/queues/worker';
import type { Services } from '../engine/runtime/services';
import { broadcastsHandlers } from './broadcasts';
import { emailHandlers } from './email';
import { erasureHandlers } from './erasure';
import { eventsHandlers } from './events';
import { journeysHandlers } from './journeys';
import { maintenanceHandlers } from './maintenance';

export type HandlerRegistry = { readonly [Q in QueueName]?: (services: Services) => JobHandlers<Q> };

/** Which engine piece handles each queue; `worker --queues` refuses a queue without one, by name. */
export const HANDLERS: HandlerRegistry = {
  events: eventsHandlers,
  journeys: journeysHandlers,
  broadcasts: broadcastsHandlers,
  email: emailHandlers,
  erasure: erasureHandlers,
  maintenance: maintenanceHandlers,
};

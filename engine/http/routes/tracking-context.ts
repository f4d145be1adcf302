import type { FastifyRequest } from 'fastify';
import type { ConsentChange } from '../../../schemas/consent';
import type { AcceptedEvent } from '../../../schemas/segment';
import type { CheckedEvent } from '../../ingest/validate';
import { truncateIp } from '../../privacy/ip';

/** The write key from HTTP Basic (user, empty password), as Segment's libraries send it, or the body. */
export function writeKeyOf(request: FastifyRequest, bodyKey: unknown): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const user = decoded.split(':', 1)[0];
    if (user) return user;
  }
  return typeof bodyKey === 'string' && bodyKey.length > 0 ? bodyKey : undefined;
}

/** What the request itself tells about the event: browser privacy signals and the client's network. */
export function requestFacts(request: FastifyRequest): Pick<AcceptedEvent, 'signals' | 'ipPrefix'> {
  const ipPrefix = truncateIp(request.ip);
  return {
    // Global Privacy Control (Sec-GPC: 1) and Do Not Track (DNT: 1); recorded here, acted on by consent.
    signals: { gpc: request.headers['sec-gpc'] === '1', dnt: request.headers.dnt === '1' },
    ...(ipPrefix ? { ipPrefix } : {}),
  };
}

/** The accepted event as it goes to the queue: what the check kept, stamped with source and time. */
export function acceptedEvent(
  sourceId: string,
  checked: CheckedEvent,
  receivedAt: Date,
  facts: Pick<AcceptedEvent, 'signals' | 'ipPrefix'>,
  consent?: ConsentChange,
): AcceptedEvent {
  const received = receivedAt.toISOString();
  return {
    sourceId,
    messageId: checked.messageId,
    receivedAt: received,
    // Most events carry no time of their own: theirs is the receive time, written once.
    occurredAt: checked.occurredAt.getTime() === receivedAt.getTime() ? received : checked.occurredAt.toISOString(),
    ...facts,
    ...(consent ? { consent } : {}),
    event: checked.event,
  };
}

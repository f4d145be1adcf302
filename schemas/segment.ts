import { z } from 'zod';
import { ExternalId } from './external-id';
import { ConsentChange } from './consent';

/**
 * Segment's tracking spec (https://segment.com/docs/connections/spec/), so existing SDKs can send here
 * by changing only their host. Unknown top-level fields (`_metadata`, `integrations`…) are dropped.
 */
export const EVENT_TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const;
export const EventType = z.enum(EVENT_TYPES, { error: `expected one of ${EVENT_TYPES.join(', ')}` });
export type EventType = z.infer<typeof EventType>;


export const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;
/** A date, or a date-time with a time zone, that Date.parse reads: the one timestamp rule of the API. */
export const isTimestamp = (s: string): boolean => ISO_DATE_TIME.test(s) && !Number.isNaN(Date.parse(s));
const Timestamp = z
  .string({ error: 'expected an ISO 8601 date-time string' })
  .refine(isTimestamp, {
    message: 'expected an ISO 8601 date-time with a time zone, e.g. 2026-11-29T10:00:00Z',
  });

const Dictionary = z.record(z.string().max(200, 'expected property names of at most 200 characters'), z.unknown(), {
  error: 'expected an object',
});

const Common = {
  messageId: z.string().min(1).max(200, 'expected at most 200 characters').optional(),
  anonymousId: ExternalId.optional(),
  userId: ExternalId.optional(),
  timestamp: Timestamp.optional(),
  sentAt: Timestamp.optional(),
  originalTimestamp: Timestamp.optional(),
  context: Dictionary.optional(),
  properties: Dictionary.optional(),
  traits: Dictionary.optional(),
  writeKey: z.string().max(200).optional(),
};

const needsIdentity = (e: { userId?: string | undefined; anonymousId?: string | undefined }) =>
  e.userId !== undefined || e.anonymousId !== undefined;
const IDENTITY_RULE = { message: 'expected userId or anonymousId (or both)', path: ['userId'] };

export const TrackEvent = z
  .object({ ...Common, type: z.literal('track'), event: z.string({ error: 'expected an event name (a string)' }).min(1, 'expected an event name').max(200) })
  .refine(needsIdentity, IDENTITY_RULE);
export const IdentifyEvent = z.object({ ...Common, type: z.literal('identify') }).refine(needsIdentity, IDENTITY_RULE);
export const PageEvent = z
  .object({ ...Common, type: z.literal('page'), name: z.string().max(200).optional(), category: z.string().max(200).optional() })
  .refine(needsIdentity, IDENTITY_RULE);
export const ScreenEvent = z
  .object({ ...Common, type: z.literal('screen'), name: z.string().max(200).optional(), category: z.string().max(200).optional() })
  .refine(needsIdentity, IDENTITY_RULE);
export const GroupEvent = z.object({ ...Common, type: z.literal('group'), groupId: ExternalId }).refine(needsIdentity, IDENTITY_RULE);
export const AliasEvent = z.object({ ...Common, type: z.literal('alias'), userId: ExternalId, previousId: ExternalId });

export const SegmentEvent = z.discriminatedUnion('type', [TrackEvent, IdentifyEvent, PageEvent, ScreenEvent, GroupEvent, AliasEvent], {
  error: `expected one of ${EVENT_TYPES.join(', ')}`,
});
export type SegmentEvent = z.infer<typeof SegmentEvent>;

export const BatchBody = z.object({
  batch: z.array(z.unknown(), { error: 'expected an array of events' }).min(1, 'expected at least one event').max(2_500, 'expected at most 2500 events'),
  sentAt: Timestamp.optional(),
  context: Dictionary.optional(),
  writeKey: z.string().max(200).optional(),
});
export type BatchBody = z.infer<typeof BatchBody>;

/** An event as accepted by the API: validated, stamped, its time corrected, its IP truncated. */
export const AcceptedEvent = z.object({
  sourceId: z.uuid(),
  messageId: z.string().min(1).max(200),
  receivedAt: z.iso.datetime({ offset: true }),
  /** Event time after clock-skew correction (see engine/ingest/clock.ts). */
  occurredAt: z.iso.datetime({ offset: true }),
  /** The client's network, never its full address: IPv4 /24, IPv6 /48. */
  ipPrefix: z.string().max(64).optional(),
  /** Browser privacy signals on the request: Sec-GPC and DNT (the consent module decides what they mean). */
  signals: z.object({ gpc: z.boolean(), dnt: z.boolean() }),
  /** A change of consent the event carries (POST /v1/consent, or a `Consent Updated` track event). */
  consent: ConsentChange.optional(),
  /** The Segment event as the API validated it; the worker checks it again on the way out of Redis. */
  event: SegmentEvent,
});
export type AcceptedEvent = z.infer<typeof AcceptedEvent>;

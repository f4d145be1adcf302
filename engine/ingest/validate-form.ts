import { randomUUID } from 'node:crypto';
import { type EventType, isTimestamp, type SegmentEvent } from '../../schemas/segment';
import { correctedTime } from './clock';
import { type Checked, MAX_EVENT_BYTES } from './validate';

/**
 * The event of the hand-written pixel form, `/t.gif?wk=…&t=page&aid=…&url=…` (engine/http/routes/
 * pixel.ts): every value a string from the query, `properties` flat.
 */
export interface FormEvent {
  properties: Record<string, string>;
  anonymousId?: string;
  userId?: string;
  event?: string;
  messageId?: string;
  timestamp?: string;
}

// As in validate.ts: C0 and C1 control characters, DEL included.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const storable = (s: string) => !CONTROL.test(s) && s.isWellFormed();
const FAILED: Checked = { ok: false, code: 'VALIDATION_FAILED', message: 'invalid pixel event' };

/**
 * Whether the form's JSON is below MAX_EVENT_BYTES without writing it: JSON writes a UTF-16 unit as
 * at most 6 bytes (`\u001f`; UTF-8 takes at most 3), and each property adds its quotes, colon and
 * comma. Nearly every pixel is a few hundred characters, so the size is rarely measured.
 */
function certainlySmall(raw: FormEvent): boolean {
  let units = 0;
  let properties = 0;
  for (const key in raw.properties) {
    units += key.length + (raw.properties[key] as string).length;
    properties++;
  }
  for (const value of [raw.anonymousId, raw.userId, raw.event, raw.messageId, raw.timestamp]) units += value?.length ?? 0;
  return 6 * units + 6 * properties + 128 <= MAX_EVENT_BYTES;
}

/** ExternalId (schemas/external-id.ts) for a string: trimmed, 1 to 200 characters. */
function externalId(value: string | undefined): string | undefined | false {
  if (value === undefined) return undefined;
  const id = value.trim();
  return id.length >= 1 && id.length <= 200 ? id : false;
}

/**
 * checkEvent (validate.ts) for a FormEvent, without the general schema: the same answer — accepted
 * or not, and the same event when accepted — in a fraction of the time, which is most of what a
 * pixel costs the API's one thread (docs/benchmarks.md, ingest). Only the reasons are not repeated:
 * a pixel answers the GIF whatever happens, and counts a refusal as `invalid_event`.
 * test/unit/validate-form.test.ts checks the two agree on arbitrary forms (fast-check).
 */
export function checkFormEvent(raw: FormEvent, type: EventType, receivedAt: Date): Checked {
  if (!certainlySmall(raw) && Buffer.byteLength(JSON.stringify(raw)) > MAX_EVENT_BYTES) {
    return { ok: false, code: 'PAYLOAD_TOO_LARGE', message: `the event is larger than ${MAX_EVENT_BYTES} bytes` };
  }
  for (const key in raw.properties) {
    if (!storable(key) || !storable(raw.properties[key] as string) || key.length > 200) return FAILED;
  }
  const { anonymousId: anonymous, userId: user, event: name, messageId: givenId, timestamp } = raw;
  for (const value of [anonymous, user, name, givenId, timestamp]) if (value !== undefined && !storable(value)) return FAILED;
  const anonymousId = externalId(anonymous);
  const userId = externalId(user);
  if (anonymousId === false || userId === false) return FAILED;
  if (givenId !== undefined && (givenId.length < 1 || givenId.length > 200)) return FAILED;
  if (timestamp !== undefined && !isTimestamp(timestamp)) return FAILED;
  // The form has no groupId or previousId, which group and alias require.
  if (type === 'group' || type === 'alias') return FAILED;
  if (type === 'track' && (name === undefined || name.length < 1 || name.length > 200)) return FAILED;
  if (anonymousId === undefined && userId === undefined) return FAILED;
  const occurredAt = correctedTime(timestamp, undefined, receivedAt);
  if (!occurredAt) return { ok: false, code: 'VALIDATION_FAILED', message: 'timestamp: expected a date-time within the last five years' };
  const messageId = givenId ?? `cf-${randomUUID()}`;
  const event = {
    type,
    messageId,
    ...(anonymousId !== undefined ? { anonymousId } : {}),
    ...(userId !== undefined ? { userId } : {}),
    ...(timestamp !== undefined ? { timestamp } : {}),
    properties: { ...raw.properties },
    // Only track events have a name; the schema drops `event` from the others.
    ...(type === 'track' ? { event: name } : {}),
  } as SegmentEvent;
  return { ok: true, event, messageId, occurredAt };
}

import { randomUUID } from 'node:crypto';
import { type EventType, SegmentEvent } from '../../schemas/segment';
import { parseAddress } from '../email/address';
import type { ErrorCode } from '../errors';
import { correctedTime } from './clock';

export const MAX_EVENT_BYTES = 32 * 1024;
export const MAX_BATCH_BYTES = 500 * 1024;
const MAX_DEPTH = 10;

export interface CheckedEvent {
  readonly ok: true;
  readonly event: SegmentEvent;
  readonly messageId: string;
  readonly occurredAt: Date;
}

export type Checked = CheckedEvent | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

// C0 and C1 control characters, DEL included. CR/LF in stored strings enable header and log
// injection downstream (emails, CSV exports); no legitimate tracking value needs them.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

// A lone UTF-16 surrogate survives JSON.parse but not PostgreSQL's jsonb (22P02): refused here, so
// one bad string can never fail a worker batch that carries other people's accepted events.
function stringProblem(s: string): string | undefined {
  if (CONTROL.test(s)) return 'control characters (U+0000-U+001F, U+007F-U+009F) are not allowed';
  if (!s.isWellFormed()) return 'unpaired UTF-16 surrogates are not allowed';
  return undefined;
}

/** The path of the first string (key or value) that cannot be stored, or of nesting too deep. */
function findBadString(value: unknown, path: string, depth: number): string | undefined {
  if (typeof value === 'string') {
    const problem = stringProblem(value);
    return problem ? `${path || '(value)'}: ${problem}` : undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  if (depth > MAX_DEPTH) return `${path}: nesting deeper than ${MAX_DEPTH} levels is not allowed`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = findBadString(value[i], `${path}.${i}`, depth + 1);
      if (bad) return bad;
    }
    return undefined;
  }
  for (const [key, inner] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    const keyProblem = stringProblem(key);
    if (keyProblem) return `${at}: in a property name, ${keyProblem}`;
    const bad = findBadString(inner, at, depth + 1);
    if (bad) return bad;
  }
  return undefined;
}

function objectAt(value: unknown, key: string): Record<string, unknown> | undefined {
  const inner = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
  return inner !== null && typeof inner === 'object' && !Array.isArray(inner) ? (inner as Record<string, unknown>) : undefined;
}

/**
 * The subscriber's address (`traits.email`, `context.traits.email`) becomes the recipient of email:
 * it is checked here, at the boundary, against the one address rule (engine/email/address.ts), so
 * nothing the mailer could not send safely is ever stored. null leaves it out.
 */
function emailProblem(raw: Record<string, unknown>): string | undefined {
  const places: Array<[string, Record<string, unknown> | undefined]> = [
    ['traits.email', objectAt(raw, 'traits')],
    ['context.traits.email', objectAt(objectAt(raw, 'context'), 'traits')],
  ];
  for (const [path, traits] of places) {
    if (!traits || !('email' in traits) || traits.email === null || traits.email === undefined) continue;
    if (typeof traits.email !== 'string') return `${path}: expected an email address as a string (or null)`;
    const parsed = parseAddress(traits.email);
    if (!parsed.ok) return `${path}: ${parsed.reason}`;
  }
  return undefined;
}

/**
 * Checks one event as the API receives it: size, strings, the Segment schema, the time. `type` is the
 * route's type (`/v1/track`) or undefined for batch items, which carry their own.
 */
export function checkEvent(raw: unknown, type: EventType | undefined, receivedAt: Date, sentAt: string | undefined, bytes?: number): Checked {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, code: 'VALIDATION_FAILED', message: '(event): expected an object' };
  const size = bytes ?? Buffer.byteLength(JSON.stringify(raw));
  if (size > MAX_EVENT_BYTES) {
    return { ok: false, code: 'PAYLOAD_TOO_LARGE', message: `the event is ${size} bytes; at most ${MAX_EVENT_BYTES} bytes are allowed per event` };
  }
  const bad = emailProblem(raw as Record<string, unknown>) ?? findBadString(raw, '', 0);
  if (bad) return { ok: false, code: 'VALIDATION_FAILED', message: bad };
  const input = type ? { ...(raw as Record<string, unknown>), type } : raw;
  const parsed = SegmentEvent.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, code: 'VALIDATION_FAILED', message: issue ? `${issue.path.join('.') || '(event)'}: ${issue.message}` : 'invalid event' };
  }
  const event = parsed.data;
  const occurredAt = correctedTime(event.timestamp, event.sentAt ?? sentAt, receivedAt);
  if (!occurredAt) return { ok: false, code: 'VALIDATION_FAILED', message: 'timestamp: expected a date-time within the last five years' };
  const { writeKey: _writeKey, ...rest } = event;
  // Segment libraries always send a messageId; a hand-written call may not, and then cannot be deduplicated.
  const messageId = event.messageId ?? `cf-${randomUUID()}`;
  // Dropping writeKey keeps the event a SegmentEvent; TypeScript loses the union through the rest spread.
  return { ok: true, event: { ...rest, messageId } as SegmentEvent, messageId, occurredAt };
}

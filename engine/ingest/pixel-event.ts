import { parse as parseQuery } from 'fast-querystring';
import type { AcceptedEvent, EventType } from '../../schemas/segment';
import { acceptedEvent } from '../http/routes/tracking-context';
import { truncateIp } from '../privacy/ip';
import { type Checked, checkEvent } from './validate';
import { checkFormEvent, type FormEvent } from './validate-form';

/**
 * One tracking-pixel request as the API's HTTP thread hands it on, once its write key proved valid:
 * a flat tuple of strings and numbers, which costs little to post to the pixel intake thread
 * (engine/ingest/pixel-intake.ts). What is left to do (check, minimize the IP, stamp) is done there.
 */
export type RawPixel = readonly [
  form: PixelForm,
  sourceId: string,
  /** The request's query string, without the `?`, as it came (never holds a line break: HTTP ends the request line there). */
  query: string,
  type: EventType,
  ip: string | undefined,
  /** Browser privacy signals: 1 for `Sec-GPC: 1`, 2 for `DNT: 1`. */
  signals: number,
  receivedAtMs: number,
];

/** 0: `/t.gif?wk=KEY&t=page&aid=…`, the hand-written form; 1: `/v1/pixel/:type?data=<base64 JSON>`, Segment's pixel. */
export type PixelForm = typeof SIMPLE_FORM | typeof SEGMENT_FORM;
export const SIMPLE_FORM = 0;
export const SEGMENT_FORM = 1;

export const SIGNAL_GPC = 1;
export const SIGNAL_DNT = 2;

export type PixelRefusal = 'malformed_data' | 'invalid_event' | 'too_large';
export type PixelOutcome = { readonly ok: true; readonly event: AcceptedEvent } | { readonly ok: false; readonly reason: PixelRefusal };

/** A query value as the pixel reads it: the first of repeated parameters. */
export function firstValue(value: unknown): string | undefined {
  if (Array.isArray(value)) return value.length > 0 ? String(value[0]) : undefined;
  return typeof value === 'string' ? value : undefined;
}

/** Query parameters of the hand-written form, `/t.gif?wk=KEY&t=page&aid=…` (see the README). */
export function simpleFormEvent(query: Readonly<Record<string, unknown>>): FormEvent {
  const properties: Record<string, string> = {};
  for (const key in query) {
    const value = firstValue(query[key]);
    if (key.startsWith('p.') && value !== undefined) properties[key.slice(2)] = value;
  }
  const url = firstValue(query.url);
  const ref = firstValue(query.ref);
  const title = firstValue(query.title);
  if (url !== undefined) properties.url = url;
  if (ref !== undefined) properties.referrer = ref;
  if (title !== undefined) properties.title = title;
  const event: FormEvent = { properties };
  const anonymousId = firstValue(query.aid);
  const userId = firstValue(query.uid);
  const name = firstValue(query.e);
  const messageId = firstValue(query.mid);
  const timestamp = firstValue(query.ts);
  if (anonymousId !== undefined) event.anonymousId = anonymousId;
  if (userId !== undefined) event.userId = userId;
  if (name !== undefined) event.event = name;
  if (messageId !== undefined) event.messageId = messageId;
  if (timestamp !== undefined) event.timestamp = timestamp;
  return event;
}

/** Segment's pixel format: base64 (either alphabet) of the JSON event, writeKey inside. */
export function decodePixelData(data: string | undefined): Record<string, unknown> | undefined {
  if (!data) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(data, data.includes('-') || data.includes('_') ? 'base64url' : 'base64').toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The event a pixel request carries, checked and stamped as the queue takes it, or why it was
 * refused. Pure: the intake thread and the HTTP thread (when the intake thread is gone) run the same.
 */
export function pixelEvent([form, sourceId, query, type, ip, signals, receivedAtMs]: RawPixel): PixelOutcome {
  const receivedAt = new Date(receivedAtMs);
  let checked: Checked;
  // fastify's own parser: the same values the HTTP thread saw (`+` a space, repeated keys an array).
  const parameters = parseQuery(query);
  if (form === SIMPLE_FORM) {
    checked = checkFormEvent(simpleFormEvent(parameters), type, receivedAt);
  } else {
    const data = decodePixelData(typeof parameters.data === 'string' ? parameters.data : undefined);
    if (!data) return { ok: false, reason: 'malformed_data' };
    checked = checkEvent(data, type, receivedAt, undefined);
  }
  if (!checked.ok) return { ok: false, reason: checked.code === 'PAYLOAD_TOO_LARGE' ? 'too_large' : 'invalid_event' };
  const ipPrefix = truncateIp(ip);
  // The same facts requestFacts (engine/http/routes/tracking-context.ts) takes from a request.
  const facts = { signals: { gpc: (signals & SIGNAL_GPC) !== 0, dnt: (signals & SIGNAL_DNT) !== 0 }, ...(ipPrefix ? { ipPrefix } : {}) };
  return { ok: true, event: acceptedEvent(sourceId, checked, receivedAt, facts) };
}

const FIELDS = 7;

/**
 * Pixels as one string, one field a line, for the intake thread: posting one string costs a fraction
 * of cloning an array per pixel. No field holds a line break: the query string and the address come
 * from the request line and a header, which end there (RFC 9112 §2.2), and the rest are the engine's.
 */
export function encodePixels(items: readonly RawPixel[]): string {
  const lines: string[] = [];
  for (const [form, sourceId, query, type, ip, signals, receivedAtMs] of items) lines.push(String(form), sourceId, query, type, ip ?? '', String(signals), String(receivedAtMs));
  return lines.join('\n');
}

export function decodePixels(text: string): RawPixel[] {
  const lines = text.split('\n');
  const items: RawPixel[] = [];
  for (let i = 0; i + FIELDS <= lines.length; i += FIELDS) {
    const ip = lines[i + 4] as string;
    items.push([
      lines[i] === '1' ? SEGMENT_FORM : SIMPLE_FORM,
      lines[i + 1] as string,
      lines[i + 2] as string,
      lines[i + 3] as EventType,
      ip === '' ? undefined : ip,
      Number(lines[i + 5]),
      Number(lines[i + 6]),
    ]);
  }
  return items;
}

import fc from 'fast-check';

/**
 * Arbitraries for the fuzz scenario: valid public API bodies as a base, then mutated (a field set to
 * something hostile, removed, or the whole body replaced), so most cases get past the first check
 * and reach the deeper ones.
 */

/** Strings meant to hurt: control characters, lone surrogates, NUL, markup, SQL, huge, look-alikes. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    '',
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '\r\nBcc: victim@example.com',
    "'; drop table app.events; --",
    '<script>alert(1)</script>',
    '{{ 7 * 7 }}',
    '../../etc/passwd',
    'ann@example.com',
    'ann@exаmple.com',
    '\u202e',
    '9'.repeat(400),
    'x'.repeat(40_000),
    '2026-02-30T25:61:00Z',
    '0000-01-01T00:00:00Z',
    '+275760-09-13T00:00:00.000Z',
    '__proto__',
    'constructor',
  ),
);

/** Any JSON value, hostile strings included, nested up to a depth past the API's limit of 10. */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    hostileString,
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -0, 0.1),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

const deep = (depth: number): unknown => (depth === 0 ? 'bottom' : { d: deep(depth - 1) });

const FIELDS = ['type', 'messageId', 'userId', 'anonymousId', 'event', 'name', 'timestamp', 'sentAt', 'originalTimestamp', 'properties', 'traits', 'context', 'groupId', 'previousId', 'writeKey', 'integrations', '__proto__'];

/** One change to an object body. */
const mutation: fc.Arbitrary<(body: Record<string, unknown>) => void> = fc.oneof(
  fc.tuple(fc.constantFrom(...FIELDS), hostileJson).map(([key, value]) => (body: Record<string, unknown>) => {
    Object.defineProperty(body, key, { value, enumerable: true, writable: true, configurable: true });
  }),
  fc.constantFrom(...FIELDS).map((key) => (body: Record<string, unknown>) => {
    delete body[key];
  }),
  fc.tuple(fc.constantFrom('properties', 'traits', 'context'), hostileString, hostileJson).map(([field, key, value]) => (body: Record<string, unknown>) => {
    const inner = { ...((body[field] as Record<string, unknown> | undefined) ?? {}) };
    Object.defineProperty(inner, key, { value, enumerable: true, writable: true, configurable: true });
    body[field] = inner;
  }),
  fc.constantFrom('properties', 'traits', 'context').map((field) => (body: Record<string, unknown>) => {
    body[field] = deep(14);
  }),
  fc.constantFrom('email', 'phone', 'firstName').chain((trait) =>
    hostileString.map((value) => (body: Record<string, unknown>) => {
      body.traits = { ...((body.traits as Record<string, unknown> | undefined) ?? {}), [trait]: value };
    }),
  ),
);

/** A valid event of any type, with the given messageId. */
export function validEvent(messageId: string): fc.Arbitrary<Record<string, unknown>> {
  const now = new Date().toISOString();
  return fc.constantFrom('track', 'identify', 'page', 'screen', 'group', 'alias').map((type) => {
    const base: Record<string, unknown> = { type, messageId, userId: `${messageId}-u`, timestamp: now };
    if (type === 'track') base.event = 'Fuzzed';
    if (type === 'page' || type === 'screen') base.name = 'Fuzz page';
    if (type === 'group') base.groupId = 'g1';
    if (type === 'alias') base.previousId = `${messageId}-prev`;
    if (type === 'identify') base.traits = { plan: 'pro', email: `${messageId}@example.com` };
    else base.properties = { path: '/fuzz' };
    return base;
  });
}

let counter = 0;
/** A fresh `fz-N` id each time a value is generated (shrinking may repeat one: callers check). */
export const freshId = (prefix: string) => fc.constant(null).map(() => `${prefix}-${++counter}`);

/** A valid event, mutated 0–3 times. */
export const fuzzEvent: fc.Arbitrary<Record<string, unknown>> = freshId('fz')
  .chain((id) => fc.tuple(validEvent(id), fc.array(mutation, { maxLength: 3 })))
  .map(([event, changes]) => {
    const copy = { ...event };
    for (const change of changes) change(copy);
    return copy;
  });

/** What a fuzz request sends: a body (or raw text), where, and how. */
export interface FuzzRequest {
  readonly path: string;
  readonly contentType: string;
  /** JSON-serializable body, or a raw string sent as it is. */
  readonly body: unknown;
  readonly raw: boolean;
}

const TRACKING_PATHS = ['/v1/track', '/v1/identify', '/v1/page', '/v1/screen', '/v1/group', '/v1/alias', '/v1/t', '/v1/i', '/v1/p'];

export const trackingRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...TRACKING_PATHS), fuzzEvent, fc.constantFrom('application/json', 'text/plain')).map(([path, body, contentType]) => ({ path, body, contentType, raw: false })) },
  {
    weight: 4,
    arbitrary: fc
      .tuple(fc.array(fuzzEvent, { minLength: 1, maxLength: 12 }), fc.option(hostileJson, { nil: undefined }), fc.constantFrom('/v1/batch', '/v1/b'))
      .map(([batch, sentAt, path]) => ({ path, body: sentAt === undefined ? { batch } : { batch, sentAt }, contentType: 'application/json', raw: false })),
  },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...TRACKING_PATHS, '/v1/batch'), hostileJson).map(([path, body]) => ({ path, body, contentType: 'application/json', raw: false })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...TRACKING_PATHS, '/v1/batch'), hostileString).map(([path, body]) => ({ path, body, contentType: 'application/json', raw: true })) },
);

const CONSENT_BASES: Array<Record<string, unknown>> = [
  { grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner' },
  { withdraw: ['email_marketing'] },
  { grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 }, method: 'double_opt_in' },
  { grant: ['email_marketing', 'profiling', 'analytics'], notice: { id: 'account_settings', version: 1 }, method: 'form', source: { form: 'signup' } },
];
const CONSENT_FIELDS = ['userId', 'anonymousId', 'email', 'grant', 'withdraw', 'notice', 'method', 'source', 'tcString', 'timestamp', 'messageId', 'writeKey'];

export const consentBody: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    freshId('fzc'),
    fc.constantFrom(...CONSENT_BASES),
    fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom(...CONSENT_FIELDS), hostileJson).map(([key, value]) => ({ key, value, remove: false })),
        fc.constantFrom(...CONSENT_FIELDS).map((key) => ({ key, value: undefined as unknown, remove: true })),
        fc.tuple(fc.constantFrom('grant', 'withdraw'), fc.array(fc.oneof(fc.constantFrom('email_marketing', 'profiling', 'analytics', 'nope'), hostileString), { maxLength: 4 })).map(([key, value]) => ({ key, value: value as unknown, remove: false })),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([id, base, changes]) => {
    const body: Record<string, unknown> = { ...base, userId: `${id}-u`, email: `${id}@example.com`, messageId: id };
    for (const c of changes) {
      if (c.remove) delete body[c.key];
      else Object.defineProperty(body, c.key, { value: c.value, enumerable: true, writable: true, configurable: true });
    }
    return body;
  });

/** Percent-encodes every byte, invalid UTF-8 included (encodeURIComponent refuses lone surrogates). */
const percent = (bytes: Uint8Array) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

/** A pixel request: Segment's `/v1/pixel/:type?data=` or the hand-written `/t.gif?…`, with the key or not. */
export function pixelPath(writeKey: string): fc.Arbitrary<string> {
  const key = fc.oneof(fc.constant(writeKey), hostileString);
  return fc.oneof(
    fc
      // (Not '..': the client resolves it away, and the request is not a pixel's any more.)
      .tuple(fc.constantFrom('track', 'page', 'identify', 'screen', 'alias', 'nope', '%00', '.x'), fuzzEvent, key, fc.constantFrom('base64', 'base64url'))
      .map(([type, event, wk, encoding]) => `/v1/pixel/${encodeURIComponent(type)}?data=${encodeURIComponent(Buffer.from(JSON.stringify({ ...event, writeKey: wk })).toString(encoding))}`),
    fc.tuple(fc.constantFrom('track', 'page'), hostileString).map(([type, data]) => `/v1/pixel/${type}?data=${percent(Buffer.from(data, 'utf8'))}`),
    fc.tuple(fc.constantFrom('track', 'page'), fc.uint8Array({ maxLength: 200 })).map(([type, data]) => `/v1/pixel/${type}?data=${percent(data)}`),
    fc.tuple(fc.constantFrom('track', 'page'), fc.uint8Array({ maxLength: 200 })).map(([type, data]) => `/v1/pixel/${type}?data=${Buffer.from(data).toString('base64')}`),
    fc
      .tuple(key, fc.dictionary(fc.constantFrom('t', 'aid', 'uid', 'url', 'ref', 'title', 'mid', 'ts', 'e', 'p.x', 'p.__proto__', 'zz'), hostileString, { maxKeys: 6 }))
      .map(([wk, params]) => `/t.gif?${Object.entries({ wk, ...params }).map(([k, v]) => `${percent(Buffer.from(k, 'utf8'))}=${percent(Buffer.from(v, 'utf8'))}`).join('&')}`),
    fc.uint8Array({ maxLength: 120 }).map((raw) => `/t.gif?${percent(raw)}`),
  );
}

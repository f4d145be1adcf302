import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { confirmationLink, type LinkKind, preferenceLink, signLink, verifyLink } from '../../engine/consent/links';

const KEY = randomBytes(32);
const OTHER_KEY = randomBytes(32);
const KINDS: readonly LinkKind[] = ['confirm', 'prefs'];
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const CONFIRM_ID = randomUUID();
const PROFILE_ID = randomUUID();
const EXPIRES = 1_790_000_000;

function validToken(kind: LinkKind, key: Buffer = KEY): string {
  return kind === 'confirm' ? signLink(key, 'confirm', { c: CONFIRM_ID, x: EXPIRES }) : signLink(key, 'prefs', { p: PROFILE_ID });
}

/** A token with a correct MAC over any body, as links.ts computes it (checked against signLink below). */
function forge(kind: LinkKind, body: string, key: Buffer = KEY): string {
  const mac = createHmac('sha256', key).update(`consentflow-link-v1\u0000${kind}\u0000${body}`).digest();
  return `${body}.${mac.toString('base64url')}`;
}

function forgeJson(kind: LinkKind, value: unknown): string {
  return forge(kind, Buffer.from(JSON.stringify(value)).toString('base64url'));
}

/** verifyLink must answer, not throw, for anything. */
function refused(kind: LinkKind, token: string): boolean {
  let result: ReturnType<typeof verifyLink>;
  try {
    result = verifyLink(KEY, kind, token);
  } catch (err) {
    throw new Error(`verifyLink threw on ${JSON.stringify(token.slice(0, 80))}: ${String(err)}`);
  }
  return !result.ok;
}

describe('signLink / verifyLink', () => {
  it('round-trips a confirmation token', () => {
    const token = signLink(KEY, 'confirm', { c: CONFIRM_ID, x: EXPIRES });
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyLink(KEY, 'confirm', token)).toEqual({ ok: true, payload: { c: CONFIRM_ID, x: EXPIRES } });
  });

  it('round-trips a preference token', () => {
    const token = signLink(KEY, 'prefs', { p: PROFILE_ID });
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyLink(KEY, 'prefs', token)).toEqual({ ok: true, payload: { p: PROFILE_ID } });
  });

  it('keeps no address in the token, only the pseudonymous id', () => {
    const token = signLink(KEY, 'prefs', { p: PROFILE_ID });
    const body = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString('utf8')) as unknown;
    expect(body).toEqual({ p: PROFILE_ID });
  });

  it('refuses a preference token presented as a confirmation token, and the reverse', () => {
    expect(verifyLink(KEY, 'confirm', validToken('prefs'))).toEqual({ ok: false });
    expect(verifyLink(KEY, 'prefs', validToken('confirm'))).toEqual({ ok: false });
  });

  it('refuses a token of the other kind even when its payload would fit this kind', () => {
    // The MAC covers the kind: a prefs-signed body shaped like a confirmation payload is still refused.
    const body = Buffer.from(JSON.stringify({ c: CONFIRM_ID, x: EXPIRES })).toString('base64url');
    expect(forge('confirm', body)).not.toBe(forge('prefs', body));
    expect(verifyLink(KEY, 'confirm', forge('prefs', body))).toEqual({ ok: false });
    expect(verifyLink(KEY, 'confirm', forge('confirm', body)).ok).toBe(true);
  });

  it('refuses a token signed under another key', () => {
    for (const kind of KINDS) {
      expect(verifyLink(KEY, kind, validToken(kind, OTHER_KEY))).toEqual({ ok: false });
      expect(verifyLink(OTHER_KEY, kind, validToken(kind))).toEqual({ ok: false });
    }
    const oneBitOff = Buffer.from(KEY);
    oneBitOff[0] = (oneBitOff[0] as number) ^ 1;
    expect(verifyLink(KEY, 'prefs', validToken('prefs', oneBitOff))).toEqual({ ok: false });
  });

  it.each(KINDS)('refuses a %s token with any single character changed, in the payload or the MAC', (kind) => {
    const token = validToken(kind);
    expect(verifyLink(KEY, kind, token).ok).toBe(true);
    const accepted: string[] = [];
    for (let i = 0; i < token.length; i++) {
      for (const c of `${BASE64URL}.`) {
        if (c === token[i]) continue;
        const changed = token.slice(0, i) + c + token.slice(i + 1);
        if (!refused(kind, changed)) accepted.push(`position ${i} (${i > token.indexOf('.') ? 'MAC' : 'payload'}): ${token[i]} -> ${c}`);
      }
    }
    expect(accepted).toEqual([]);
  });

  it('the forging helper matches signLink', () => {
    for (const kind of KINDS) {
      const token = validToken(kind);
      expect(forge(kind, token.split('.')[0] as string)).toBe(token);
    }
  });

  describe('refuses malformed tokens without throwing', () => {
    const token = validToken('prefs');
    const [body, mac] = token.split('.') as [string, string];

    it.each<[string, string]>([
      ['empty', ''],
      ['a dot alone', '.'],
      ['no dot', body + mac],
      ['only the payload', body],
      ['only the payload and a dot', `${body}.`],
      ['only the MAC', `.${mac}`],
      ['an extra dot at the end', `${token}.`],
      ['an extra dot in the middle', `${body}.${mac.slice(0, 20)}.${mac.slice(20)}`],
      ['an extra part', `${token}.${mac}`],
      ['two dots between', `${body}..${mac}`],
      ['a leading dot', `.${token}`],
      ['a 600-character string', `${'A'.repeat(556)}.${'A'.repeat(43)}`],
      ['600 characters of x', 'x'.repeat(600)],
      ['a MAC one character short', token.slice(0, -1)],
      ['a MAC one character long', `${token}A`],
      ['base64 padding', `${token}=`],
      ['standard base64 + in the payload', `+${token.slice(1)}`],
      ['standard base64 / in the MAC', `${token.slice(0, -1)}/`],
      ['a space', ` ${token}`],
      ['a newline at the end', `${token}\n`],
      ['a percent-encoded dot', `${body}%2E${mac}`],
      ['non-ASCII', `${body}é.${mac}`],
      ['a NUL', `${body}\u0000.${mac}`],
      ['the MAC in hex', `${body}.${Buffer.from(mac, 'base64url').toString('hex')}`],
    ])('%s', (_label, input) => {
      expect(refused('prefs', input)).toBe(true);
      expect(refused('confirm', input)).toBe(true);
    });

    it('a well-MACed token longer than 4096 characters', () => {
      const long = forgeJson('prefs', { p: PROFILE_ID, pad: 'x'.repeat(3_100) });
      expect(long.length).toBeGreaterThan(4096);
      expect(refused('prefs', long)).toBe(true);
    });

    it.each<[string, LinkKind, string]>([
      ['not base64 of JSON', 'prefs', Buffer.from('not json').toString('base64url')],
      ['truncated JSON', 'prefs', Buffer.from(`{"p":"${PROFILE_ID}"`).toString('base64url')],
      ['invalid UTF-8', 'prefs', Buffer.from([0xff, 0xfe, 0xfd]).toString('base64url')],
      ['a body that is not base64url of anything', 'confirm', 'A'],
    ])('a valid MAC over %s', (_label, kind, forgedBody) => {
      expect(refused(kind, forge(kind, forgedBody))).toBe(true);
    });

    it.each<[string, LinkKind, unknown]>([
      ['prefs with an extra field', 'prefs', { p: PROFILE_ID, e: 'someone@example.com' }],
      ['confirm with an extra field', 'confirm', { c: CONFIRM_ID, x: EXPIRES, p: PROFILE_ID }],
      ['prefs with no field', 'prefs', {}],
      ['prefs with p a number', 'prefs', { p: 12 }],
      ['prefs with p not a UUID', 'prefs', { p: 'someone@example.com' }],
      ['prefs with p null', 'prefs', { p: null }],
      ['confirm without x', 'confirm', { c: CONFIRM_ID }],
      ['confirm without c', 'confirm', { x: EXPIRES }],
      ['confirm with x a string', 'confirm', { c: CONFIRM_ID, x: String(EXPIRES) }],
      ['confirm with x a fraction', 'confirm', { c: CONFIRM_ID, x: EXPIRES + 0.5 }],
      ['confirm with x a boolean', 'confirm', { c: CONFIRM_ID, x: true }],
      ['confirm with c not a UUID', 'confirm', { c: 'abc', x: EXPIRES }],
      ['prefs as a confirmation payload', 'prefs', { c: CONFIRM_ID, x: EXPIRES }],
      ['confirm as a preference payload', 'confirm', { p: PROFILE_ID }],
      ['null', 'prefs', null],
      ['a string', 'prefs', PROFILE_ID],
      ['a number', 'confirm', EXPIRES],
      ['an array', 'prefs', [PROFILE_ID]],
    ])('a valid MAC over %s', (_label, kind, value) => {
      expect(refused(kind, forgeJson(kind, value))).toBe(true);
    });
  });
});

describe('confirmationLink / preferenceLink', () => {
  const BASE = 'https://consent.example.com';

  it('builds a confirmation URL under the base whose token verifies as a confirmation', () => {
    const expiresAt = new Date('2026-05-01T12:00:00.999Z');
    const link = confirmationLink(BASE, KEY, CONFIRM_ID, expiresAt);
    expect(link.startsWith(`${BASE}/v1/consent/confirm?token=`)).toBe(true);
    const url = new URL(link);
    expect(url.origin).toBe(BASE);
    expect(url.pathname).toBe('/v1/consent/confirm');
    const token = url.searchParams.get('token') as string;
    expect(link).toBe(`${BASE}/v1/consent/confirm?token=${token}`);
    expect(verifyLink(KEY, 'confirm', token)).toEqual({
      ok: true,
      payload: { c: CONFIRM_ID, x: Math.floor(expiresAt.getTime() / 1000) },
    });
    expect(verifyLink(KEY, 'prefs', token)).toEqual({ ok: false });
    expect(verifyLink(OTHER_KEY, 'confirm', token)).toEqual({ ok: false });
  });

  it('builds a preference URL under the base whose token verifies as a preference link', () => {
    const link = preferenceLink(BASE, KEY, PROFILE_ID);
    const match = /^https:\/\/consent\.example\.com\/p\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43})$/.exec(link);
    expect(match).not.toBeNull();
    const token = (match as RegExpExecArray)[1] as string;
    expect(new URL(link).pathname).toBe(`/p/${token}`);
    expect(verifyLink(KEY, 'prefs', token)).toEqual({ ok: true, payload: { p: PROFILE_ID } });
    expect(verifyLink(KEY, 'confirm', token)).toEqual({ ok: false });
  });

  it('keeps a base with a path prefix', () => {
    const base = 'https://example.com/consentflow';
    const link = preferenceLink(base, KEY, PROFILE_ID);
    expect(link.startsWith(`${base}/p/`)).toBe(true);
    expect(verifyLink(KEY, 'prefs', link.slice(`${base}/p/`.length)).ok).toBe(true);
    const confirm = new URL(confirmationLink(base, KEY, CONFIRM_ID, new Date(EXPIRES * 1000)));
    expect(confirm.pathname).toBe('/consentflow/v1/consent/confirm');
    expect(verifyLink(KEY, 'confirm', confirm.searchParams.get('token') as string)).toEqual({
      ok: true,
      payload: { c: CONFIRM_ID, x: EXPIRES },
    });
  });
});

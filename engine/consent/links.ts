import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/**
 * Signed links for people who have no login: a double opt-in confirmation and a preference page.
 * The token is `<payload>.<mac>`, both base64url; the MAC is HMAC-SHA256 under LINK_SIGNING_KEY over
 * the link's kind and payload, so a preference link cannot be replayed as a confirmation link.
 * Tokens hold pseudonymous ids only, never an address.
 */

export type LinkKind = 'confirm' | 'prefs' | 'unsub' | 'click' | 'open' | 'forget';

const ConfirmPayload = z.strictObject({ c: z.uuid(), x: z.number().int() });
const PrefsPayload = z.strictObject({ p: z.uuid() });
const UnsubscribePayload = z.strictObject({ s: z.uuid() });
const ClickPayload = z.strictObject({ s: z.uuid(), u: z.url({ protocol: /^https?$/ }).max(2000) });
const OpenPayload = z.strictObject({ s: z.uuid() });
/** "Forget me", confirmed from the person's mailbox: the profile and when the link lapses (unix seconds). */
const ForgetPayload = z.strictObject({ p: z.uuid(), x: z.number().int() });
const PAYLOADS = { confirm: ConfirmPayload, prefs: PrefsPayload, unsub: UnsubscribePayload, click: ClickPayload, open: OpenPayload, forget: ForgetPayload } as const;
export type LinkPayload<K extends LinkKind> = z.infer<(typeof PAYLOADS)[K]>;

function mac(key: Buffer, kind: LinkKind, body: string): Buffer {
  return createHmac('sha256', key).update(`consentflow-link-v1\u0000${kind}\u0000${body}`).digest();
}

export function signLink<K extends LinkKind>(key: Buffer, kind: K, payload: LinkPayload<K>): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${mac(key, kind, body).toString('base64url')}`;
}

export type LinkCheck<K extends LinkKind> = { ok: true; payload: LinkPayload<K> } | { ok: false };

/** Verifies a token of this kind; anything malformed, tampered or of another kind is `ok: false`. */
export function verifyLink<K extends LinkKind>(key: Buffer, kind: K, token: string): LinkCheck<K> {
  if (token.length > 4096) return { ok: false };
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!match) return { ok: false };
  const [, body, signature] = match as unknown as [string, string, string];
  const expected = mac(key, kind, body);
  const given = Buffer.from(signature, 'base64url');
  // The 43rd character carries 2 unused bits the decoder ignores: only the canonical spelling counts,
  // so a link has one valid form.
  if (given.toString('base64url') !== signature || given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false };
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return { ok: false };
  }
  const parsed = PAYLOADS[kind].safeParse(json);
  return parsed.success ? { ok: true, payload: parsed.data as LinkPayload<K> } : { ok: false };
}

export function confirmationLink(publicUrl: string, key: Buffer, confirmationId: string, expiresAt: Date): string {
  const token = signLink(key, 'confirm', { c: confirmationId, x: Math.floor(expiresAt.getTime() / 1000) });
  return `${publicUrl}/v1/consent/confirm?token=${token}`;
}

export function preferenceLink(publicUrl: string, key: Buffer, profileId: string): string {
  return `${publicUrl}/p/${signLink(key, 'prefs', { p: profileId })}`;
}

export function forgetLink(publicUrl: string, key: Buffer, profileId: string, expiresAt: Date): string {
  return `${publicUrl}/f/${signLink(key, 'forget', { p: profileId, x: Math.floor(expiresAt.getTime() / 1000) })}`;
}

/** One-click unsubscribe (RFC 8058) for one send: it names the send, whose campaign and person it was. */
export function unsubscribeLink(publicUrl: string, key: Buffer, sendId: string): string {
  return `${publicUrl}/u/${signLink(key, 'unsub', { s: sendId })}`;
}

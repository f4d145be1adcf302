import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ApiKeySummary } from '../../../schemas/api-keys';
import { findActiveApiKeyById } from '../../auth/api-keys';
import type { HttpDeps } from '../deps';
import { formValues } from '../pages/respond';

/**
 * The browser session of the admin pages. Browsers cannot send a Bearer header, so POST /admin/login
 * trades a valid API key for a cookie holding a signed token: the key's id and an expiry, never the
 * key itself. Each request re-reads the key by id, so revoking or expiring the key ends every session
 * made with it at once. The cookie is accepted only on routes marked `browser: true` (auth.ts).
 *
 * Forged requests (OWASP ASVS 5.0 V3.5.1): the cookie is SameSite=Strict, a form sent with it must
 * carry a per-session CSRF token (an HMAC of the session token, so nothing is stored server-side),
 * and its Origin, when the browser sends one, must be PUBLIC_URL's.
 */

export const SESSION_COOKIE = 'cf_admin_session';
export const SESSION_TTL_SECONDS = 8 * 60 * 60;
export const DASHBOARD_PATH = '/admin/v1/dashboard';
/** The hidden form field carrying the CSRF token. */
export const CSRF_FIELD = 'csrf';

declare module 'fastify' {
  interface FastifyRequest {
    /** The session token, when this admin request authenticated by the browser session cookie. */
    adminSession?: string;
  }
}

const VERSION = 's1';
const KEY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TOKEN = /^[A-Za-z0-9._-]{1,300}$/;

/** Separate keys derived from LINK_SIGNING_KEY (like the erasure receipts'): a link token never verifies as a session. */
function derive(linkSigningKey: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', linkSigningKey, Buffer.alloc(0), `consentflow admin ${purpose} v1`, 32));
}

const mac = (key: Buffer, text: string): string => createHmac('sha256', key).update(text, 'utf8').digest('base64url');

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `s1.<key id>.<expiry, unix seconds>.<HMAC>`. */
export function signSession(linkSigningKey: Buffer, keyId: string, now = Date.now()): { token: string; expiresAt: Date } {
  const expires = Math.floor(now / 1000) + SESSION_TTL_SECONDS;
  const body = `${VERSION}.${keyId}.${expires}`;
  return { token: `${body}.${mac(derive(linkSigningKey, 'session'), body)}`, expiresAt: new Date(expires * 1000) };
}

/** The key id of a well-signed, unexpired token; undefined for anything else. */
export function verifySession(linkSigningKey: Buffer, token: string, now = Date.now()): { keyId: string } | undefined {
  if (!TOKEN.test(token)) return undefined;
  const [version, keyId, expires, signature, ...rest] = token.split('.');
  if (version !== VERSION || !keyId || !expires || !signature || rest.length > 0) return undefined;
  if (!sameText(signature, mac(derive(linkSigningKey, 'session'), `${version}.${keyId}.${expires}`))) return undefined;
  if (!KEY_ID.test(keyId) || !/^\d{1,12}$/.test(expires) || Number(expires) * 1000 <= now) return undefined;
  return { keyId };
}

export function csrfToken(linkSigningKey: Buffer, sessionToken: string): string {
  return mac(derive(linkSigningKey, 'csrf'), sessionToken);
}

/** The value of one cookie in a Cookie header (RFC 6265 §5.4); undefined when absent. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/** Path=/admin: the login and logout routes and the pages under /admin/v1, nothing else of the site. */
export function sessionCookie(token: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Path=/admin; Max-Age=${SESSION_TTL_SECONDS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export const isHttps = (publicUrl: string): boolean => publicUrl.startsWith('https:');

/** A browser's Origin header, when it sent one, must be PUBLIC_URL's (ASVS 5.0 V3.5.1). */
export function originAllowed(request: FastifyRequest, publicUrl: string): boolean {
  const origin = request.headers.origin;
  return origin === undefined || origin === new URL(publicUrl).origin;
}

/** The active key of the request's session cookie, or undefined; marks the request as a browser session. */
export async function keyOfSession(deps: HttpDeps, request: FastifyRequest): Promise<ApiKeySummary | undefined> {
  const token = readCookie(request.headers.cookie, SESSION_COOKIE);
  const session = token ? verifySession(deps.keys.linkSigning, token) : undefined;
  const key = session ? await findActiveApiKeyById(deps.databases.db, session.keyId) : undefined;
  if (key && token) request.adminSession = token;
  return key;
}

/**
 * Why a change sent with the session cookie is refused, or undefined when it may go on: its Origin
 * must be ours and the form must carry the session's CSRF token. Reads the parsed body, so it runs
 * once the body is parsed (preValidation). Reads (GET) pass: they change nothing.
 */
export function forgedFormRefusal(deps: HttpDeps, request: FastifyRequest): string | undefined {
  const token = request.adminSession;
  if (!token || request.method === 'GET' || request.method === 'HEAD') return undefined;
  if (!originAllowed(request, deps.config.http.publicUrl)) return 'this form was sent from another site (its Origin is not PUBLIC_URL)';
  const given = formValues(request, CSRF_FIELD)[0];
  if (!given || !sameText(given, csrfToken(deps.keys.linkSigning, token))) {
    return 'this form lacks a valid CSRF token: reload the dashboard and send it again';
  }
  return undefined;
}

/** A browser asking for a page it may see once signed in is sent to the login page rather than shown a 401. */
export function wantsLoginPage(request: FastifyRequest): boolean {
  return request.method === 'GET' && request.headers.authorization === undefined && (request.headers.accept ?? '').includes('text/html');
}

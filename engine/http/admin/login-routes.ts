import type { FastifyInstance, FastifyReply } from 'fastify';
import { appendAudit } from '../../audit/append';
import { keyTarget } from '../../audit/targets';
import { findActiveApiKey } from '../../auth/api-keys';
import type { HttpDeps } from '../deps';
import { escapeHtml } from '../pages/layout';
import { acceptForms, formValues, sendPage } from '../pages/respond';
import { DASHBOARD_PATH, clearedSessionCookie, isHttps, originAllowed, sessionCookie, signSession } from './session';

const FORM = `<form method="post" action="/admin/login">
<p><label for="key">Admin API key</label><br><input type="password" id="key" name="key" autocomplete="off" required size="50"></p>
<button type="submit">Sign in</button>
</form>
<p class="muted">The key is exchanged for a session cookie valid for 8 hours; the key itself is not kept in the browser. Create a key with <code>consentflow keys create --role operator</code>.</p>`;

function loginPage(reply: FastifyReply, status: number, notice?: string): FastifyReply {
  return sendPage(reply, status, 'en', 'Sign in to consentflow', `${notice ? `<p class="notice error" role="alert">${escapeHtml(notice)}</p>\n` : ''}${FORM}`);
}

/**
 * The browser login of the admin pages, under /admin and outside the Bearer scope of /admin/v1: an
 * API key typed into a form becomes a signed session cookie (session.ts). A refused key gets a 401
 * that does not say whether it was unknown, revoked or expired, and is not audited (there is no key
 * to name; 401s are counted in metrics); a successful login is audited as `admin.login`.
 */
export async function adminLoginRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  acceptForms(app);
  const secure = isHttps(deps.config.http.publicUrl);

  app.get('/login', async (_request, reply) => loginPage(reply, 200));

  app.post('/login', async (request, reply) => {
    // Login CSRF (a session of the attacker's key in the victim's browser): the Origin must be ours.
    if (!originAllowed(request, deps.config.http.publicUrl)) return loginPage(reply, 403, 'This form was sent from another site.');
    const given = formValues(request, 'key')[0]?.trim() ?? '';
    const key = given ? await findActiveApiKey(deps.databases.db, given) : undefined;
    if (!key) return loginPage(reply, 401, 'That key was not accepted.');
    const session = signSession(deps.keys.linkSigning, key.id);
    await appendAudit(deps.databases.db, deps.keys, [
      {
        actor: `key:${key.id}`,
        action: 'admin.login',
        target: keyTarget(key.id),
        outcome: 'ok',
        detail: { method: 'POST', route: '/admin/login', status: 303, sessionExpiresAt: session.expiresAt.toISOString() },
      },
    ], request.log);
    return reply.header('set-cookie', sessionCookie(session.token, secure)).header('cache-control', 'no-store').redirect(DASHBOARD_PATH, 303);
  });

  // The session is a signed token, not a server-side record: signing out removes it from the browser;
  // revoking the key (`consentflow keys revoke`) ends every session made with it.
  app.post('/logout', async (request, reply) => {
    if (!originAllowed(request, deps.config.http.publicUrl)) return loginPage(reply, 403, 'This form was sent from another site.');
    return reply.header('set-cookie', clearedSessionCookie(secure)).header('cache-control', 'no-store').redirect('/admin/login', 303);
  });
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { verifyLink } from '../../consent/links';
import { unsubscribeWithToken } from '../../consent/unsubscribe';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { truncateIp } from '../../privacy/ip';
import type { HttpDeps } from '../deps';
import { escapeHtml } from '../pages/layout';
import { guardFormPosts } from '../pages/same-origin';
import { acceptForms, sendPage } from '../pages/respond';

type Outcome = { readonly ok: true; readonly withdrawn: readonly string[] } | { readonly ok: false; readonly status: 400 | 410; readonly message: string };

/**
 * One-click unsubscribe (RFC 8058): `POST /u/:token` withdraws the marketing-email purposes of the
 * send's campaign in one request, with no page to click through; `GET /u/:token` shows a page with a
 * button and never changes anything by itself (mail scanners open links). Withdrawing is as easy as
 * consenting (GDPR Art. 7(3)), and it ends the journeys that ran under it and cancels their sends.
 * A POST a browser sends from another site is refused (pages/same-origin.ts); the mail provider's
 * one-click POST comes from its server, with no Origin, and goes through.
 */
export async function unsubscribeRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  acceptForms(app);
  // A POST sent by a browser from another site is refused before it is read (pages/same-origin.ts).
  guardFormPosts(app, deps.config.http.publicUrl);

  async function unsubscribe(request: FastifyRequest, token: string): Promise<Outcome> {
    const outcome = await unsubscribeWithToken(
      { db: deps.databases.db, linkSigningKey: deps.keys.linkSigning, rules: deps.rules },
      { token, via: 'link', ipPrefix: truncateIp(request.ip) },
    );
    if (!outcome.ok) {
      return outcome.reason === 'invalid_token'
        ? { ok: false, status: 400, message: 'This unsubscribe link is incomplete or has been altered, so nothing was changed. Use the link from the email itself.' }
        : { ok: false, status: 410, message: 'We hold no data about you any more, so there is nothing to unsubscribe from.' };
    }
    if (outcome.automationError !== undefined) {
      request.log.error({ error: outcome.automationError }, 'the rules failed after an unsubscribe; it is recorded and the person marked for a re-check');
    }
    await relayAfterCommit(deps, outcome.outboxWritten);
    return { ok: true, withdrawn: outcome.withdrawn };
  }

  const page = (reply: FastifyReply, outcome: Outcome) =>
    outcome.ok
      ? sendPage(reply, 200, 'en', 'You are unsubscribed', '<p class="notice" role="status">You will get no more of these emails. Nothing else is needed.</p>')
      : sendPage(reply, outcome.status, 'en', outcome.status === 400 ? 'This link is not valid' : 'Nothing to unsubscribe from', `<p class="notice error">${escapeHtml(outcome.message)}</p>`);

  app.get('/:token', async (request, reply) => {
    const { token } = request.params as { token: string };
    if (!verifyLink(deps.keys.linkSigning, 'unsub', token).ok) return page(reply, { ok: false, status: 400, message: 'This unsubscribe link is incomplete or has been altered, so nothing was changed. Use the link from the email itself.' });
    return sendPage(
      reply,
      200,
      'en',
      'Unsubscribe',
      `<p>Do you want to stop receiving these emails?</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`,
    );
  });

  // The mail client's one-click POST (body `List-Unsubscribe=One-Click`) and the page's button alike.
  app.post('/:token', async (request, reply) => page(reply, await unsubscribe(request, (request.params as { token: string }).token)));
}

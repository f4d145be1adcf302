import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifyLink } from '../../consent/links';
import { unsubscribeWithToken } from '../../consent/unsubscribe';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { truncateIp } from '../../privacy/ip';
import type { HttpDeps } from '../deps';
import { guardFormPosts } from '../pages/same-origin';
import { acceptForms } from '../pages/respond';
import { pageLanguage } from '../pages/strings';
import { unsubscribePage, type UnsubscribeView } from '../pages/unsubscribe-page';

/**
 * One-click unsubscribe (RFC 8058): `POST /u/:token` withdraws the marketing-email purposes of the
 * send's campaign in one request, with no page to click through; `GET /u/:token` shows a page with a
 * button and never changes anything by itself (mail scanners open links). Withdrawing is as easy as
 * consenting (GDPR Art. 7(3)), and it ends the journeys that ran under it and cancels their sends.
 * A POST a browser sends from another site is refused (pages/same-origin.ts); the mail provider's
 * one-click POST comes from its server, with no Origin, and goes through. The pages are in the
 * browser's language (English or Polish, pages/strings.ts).
 */
export async function unsubscribeRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  acceptForms(app);
  // A POST sent by a browser from another site is refused before it is read (pages/same-origin.ts).
  guardFormPosts(app, deps.config.http.publicUrl);

  async function unsubscribe(request: FastifyRequest, token: string): Promise<UnsubscribeView> {
    const outcome = await unsubscribeWithToken(
      { db: deps.databases.db, linkSigningKey: deps.keys.linkSigning, rules: deps.rules },
      { token, via: 'link', ipPrefix: truncateIp(request.ip) },
    );
    if (!outcome.ok) return { kind: outcome.reason === 'invalid_token' ? 'invalid' : 'gone' };
    if (outcome.automationError !== undefined) {
      request.log.error({ error: outcome.automationError }, 'the rules failed after an unsubscribe; it is recorded and the person marked for a re-check');
    }
    await relayAfterCommit(deps, outcome.outboxWritten);
    return { kind: 'done' };
  }

  app.get('/:token', async (request, reply) => {
    const { token } = request.params as { token: string };
    const valid = verifyLink(deps.keys.linkSigning, 'unsub', token).ok;
    return unsubscribePage(reply, pageLanguage(request), { kind: valid ? 'question' : 'invalid' });
  });

  // The mail client's one-click POST (body `List-Unsubscribe=One-Click`) and the page's button alike.
  app.post('/:token', async (request, reply) =>
    unsubscribePage(reply, pageLanguage(request), await unsubscribe(request, (request.params as { token: string }).token)),
  );
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { reactToConsent } from '../../automation/react-to-consent';
import { decide } from '../../consent/gate';
import { appendLedger, consentOf } from '../../consent/ledger';
import { verifyLink } from '../../consent/links';
import { lockProfileRows } from '../../db/profile-locks';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { truncateIp } from '../../privacy/ip';
import type { HttpDeps } from '../deps';
import { escapeHtml } from '../pages/layout';
import { acceptForms, sendPage } from '../pages/respond';

type Outcome = { readonly ok: true; readonly withdrawn: readonly string[] } | { readonly ok: false; readonly status: 400 | 410; readonly message: string };

/**
 * One-click unsubscribe (RFC 8058): `POST /u/:token` withdraws the marketing-email purposes of the
 * send's campaign in one request, with no page to click through; `GET /u/:token` shows a page with a
 * button and never changes anything by itself (mail scanners open links). Withdrawing is as easy as
 * consenting (GDPR Art. 7(3)), and it ends the journeys that ran under it and cancels their sends.
 */
export async function unsubscribeRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  acceptForms(app);

  async function unsubscribe(request: FastifyRequest, token: string): Promise<Outcome> {
    const link = verifyLink(deps.keys.linkSigning, 'unsub', token);
    if (!link.ok) return { ok: false, status: 400, message: 'This unsubscribe link is incomplete or has been altered, so nothing was changed. Use the link from the email itself.' };
    const db = deps.databases.db;
    const send = await db.selectFrom('app.scheduled_sends').select(['profile_id', 'campaign_id']).where('id', '=', link.payload.s).executeTakeFirst();
    if (!send) return { ok: false, status: 410, message: 'We hold no data about you any more, so there is nothing to unsubscribe from.' };
    const catalog = deps.rules.purposes;
    const marketing = catalog.providing('send_marketing_email').map((p) => p.name);
    const campaignPurposes = deps.rules.compiled.campaigns.get(send.campaign_id)?.file.purposes ?? marketing;
    const purposes = marketing.filter((p) => campaignPurposes.includes(p));
    let outboxRows = 0;
    const withdrawn = await db.transaction().execute(async (trx) => {
      await lockProfileRows(trx, [send.profile_id]);
      const state = await consentOf(trx, send.profile_id);
      // Only what is still allowed is withdrawn: a second click records nothing more.
      const toWithdraw = purposes.filter((p) => decide(catalog, state, { purposes: [p] }).allowed);
      const now = new Date();
      await appendLedger(
        trx,
        toWithdraw.map((purpose) => ({
          profileId: send.profile_id,
          purpose,
          decision: 'withdrawn' as const,
          occurredAt: now,
          sourceKind: 'email_link' as const,
          sourceRef: `unsubscribe link of send ${link.payload.s}`,
          method: 'email_link' as const,
          ipPrefix: truncateIp(request.ip),
        })),
      );
      if (toWithdraw.length > 0) {
        const reacted = await reactToConsent(trx, { compiled: deps.rules.compiled, catalog }, send.profile_id);
        if (reacted.ok) outboxRows = reacted.outcome.outboxWritten;
        else request.log.error({ error: reacted.error }, 'the rules failed after an unsubscribe; it is recorded and the person marked for a re-check');
      }
      return toWithdraw;
    });
    await relayAfterCommit(deps, outboxRows);
    return { ok: true, withdrawn };
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

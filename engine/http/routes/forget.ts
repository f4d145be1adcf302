import type { FastifyInstance } from 'fastify';
import { verifyLink } from '../../consent/links';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { createErasureRequest } from '../../privacy/erasure/request';
import type { HttpDeps } from '../deps';
import { forgetPage } from '../pages/forget-page';
import { guardFormPosts } from '../pages/same-origin';
import { acceptForms } from '../pages/respond';
import { pageLanguage } from '../pages/strings';

/** How long the emailed "forget me" link works. */
const LINK_DAYS = 7;

/** Queues the confirmation email (one a day per person: a second click the same day sends nothing more). */
export async function requestForgetEmail(deps: HttpDeps, profileId: string): Promise<void> {
  const expiresAt = new Date(Date.now() + LINK_DAYS * 86_400_000);
  const day = new Date().toISOString().slice(0, 10).replace(/-/g, '');
  await deps.queues.enqueue('email', 'forget_confirmation', { profileId, expiresAt: expiresAt.toISOString() }, { jobId: `forget-${profileId}-${day}` });
}

/**
 * `GET|POST /f/:token`, the link in the confirmation email. A GET only shows the question (mail
 * scanners prefetch links); the POST records the erasure request, which the erasure worker runs.
 */
export async function forgetRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  acceptForms(app);
  // A POST sent by a browser from another site is refused before it is read (pages/same-origin.ts).
  guardFormPosts(app, deps.config.http.publicUrl);
  const check = (token: string) => {
    const link = verifyLink(deps.keys.linkSigning, 'forget', token);
    return link.ok && link.payload.x * 1000 > Date.now() ? link.payload.p : undefined;
  };

  app.get('/:token', async (request, reply) => {
    const valid = check((request.params as { token: string }).token) !== undefined;
    return forgetPage(reply, pageLanguage(request), { kind: valid ? 'question' : 'invalid' });
  });

  app.post('/:token', async (request, reply) => {
    const lang = pageLanguage(request);
    const profileId = check((request.params as { token: string }).token);
    if (!profileId) return forgetPage(reply, lang, { kind: 'invalid' });
    const created = await createErasureRequest(deps.databases, deps.config, deps.keys, {
      identifier: { profileId },
      origin: 'self_service',
      requestedBy: 'self-service link',
    });
    if (!created.ok) return forgetPage(reply, lang, { kind: 'gone' });
    if (created.created) await relayAfterCommit(deps, 1);
    request.log.info({ requestId: created.id, created: created.created }, 'erasure requested by the person');
    return forgetPage(reply, lang, { kind: 'requested', requestId: created.id });
  });
}

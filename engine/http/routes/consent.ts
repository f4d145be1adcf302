import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ConsentRequest } from '../../../schemas/consent';
import type { AcceptedEvent } from '../../../schemas/segment';
import { correctedTime } from '../../ingest/clock';
import { confirmationState, confirmSubscription, pendingPurposes } from '../../consent/confirmations';
import { consentOf } from '../../consent/ledger';
import { verifyLink, preferenceLink } from '../../consent/links';
import { changeFromRequest } from '../../consent/requests';
import { consentSummary } from '../../consent/summary';
import type { BatchDeps } from '../../events/process-batch';
import { processEventBatch } from '../../events/process-batch';
import { findProfileId, type SubjectIdentifier } from '../../identity/lookup';
import { truncateIp } from '../../privacy/ip';
import { enqueueConfirmations } from '../../runtime/batch';
import { reactToConsent } from '../../automation/react-to-consent';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { describeZodError, sendError } from '../errors';
import { confirmPage as showConfirmPage } from '../pages/confirm-page';
import { acceptForms, formValues } from '../pages/respond';
import { type PageLanguage, pageLanguage } from '../pages/strings';
import { authenticate, objectBody, type TrackingDeps } from './tracking';
import { requestFacts } from './tracking-context';
import { crossSiteReason, originOf, refuseCrossSite } from '../pages/same-origin';
import { parseAddress } from '../../email/address';

export interface ConsentDeps extends TrackingDeps {
  readonly batch: BatchDeps;
}

/**
 * `POST /v1/consent` (write key): a consent choice, committed to PostgreSQL before the answer (not
 * only queued: DESIGN.md "Stores"), answered with the person's new state. `GET|POST
 * /v1/consent/confirm`: the double opt-in link.
 */
export async function consentRoutes(app: FastifyInstance, deps: ConsentDeps): Promise<void> {
  acceptForms(app);

  app.post('/consent', { bodyLimit: 64 * 1024 }, async (request, reply) => {
    const body = objectBody(request.body);
    const sourceId = await authenticate(deps, request, reply, body.writeKey);
    if (!sourceId) return reply;
    const parsed = ConsentRequest.safeParse(body);
    if (!parsed.success) return sendError(reply, 'VALIDATION_FAILED', describeZodError(parsed.error), deps.metrics);
    // The one address rule of the engine (engine/email/address.ts), not zod's looser one: an
    // address the mailer would refuse must not be answered 202 and lapse silently.
    if (parsed.data.email !== undefined) {
      const address = parseAddress(parsed.data.email);
      if (!address.ok) return sendError(reply, 'VALIDATION_FAILED', `email: ${address.reason}`, deps.metrics);
    }
    // Read at each request: a reload of the rules applies from the next one.
    const catalog = deps.rules.purposes;
    const checked = changeFromRequest(catalog, parsed.data);
    if (!checked.ok) return sendError(reply, 'VALIDATION_FAILED', checked.message, deps.metrics);
    const r = parsed.data;
    const receivedAt = new Date();
    // The person's own time of choice is evidence (the state follows the order of recording), kept
    // within the window tracking events have, never in the future.
    const occurredAt = correctedTime(r.timestamp, undefined, receivedAt);
    if (!occurredAt) {
      return sendError(reply, 'VALIDATION_FAILED', 'timestamp: expected a time within the last 5 years', deps.metrics);
    }
    const messageId = r.messageId ?? randomUUID();
    const accepted: AcceptedEvent = {
      sourceId,
      messageId,
      receivedAt: receivedAt.toISOString(),
      occurredAt: occurredAt.toISOString(),
      ...requestFacts(request),
      ...(checked.change ? { consent: checked.change } : {}),
      event: {
        type: 'track',
        event: 'Consent Updated',
        messageId,
        ...(r.anonymousId !== undefined ? { anonymousId: r.anonymousId } : {}),
        ...(r.userId !== undefined ? { userId: r.userId } : {}),
        // The address goes where the events worker looks for it: into the vault, encrypted.
        ...(r.email !== undefined ? { context: { traits: { email: r.email } } } : {}),
      },
    };
    const outcome = await processEventBatch(deps.batch, [accepted]);
    if (outcome.rejected > 0) {
      return sendError(reply, 'VALIDATION_FAILED', 'PostgreSQL refused a value of this request; nothing was recorded', deps.metrics);
    }
    await relayAfterCommit(deps, outcome.automation?.outboxWritten ?? 0);
    await enqueueConfirmations(deps, outcome.confirmations).catch((err: unknown) =>
      request.log.warn({ err }, 'confirmation email not queued yet; the email worker sweeper will queue it'),
    );
    const ids: SubjectIdentifier[] = [];
    if (r.userId !== undefined) ids.push({ userId: r.userId });
    if (r.email !== undefined) ids.push({ email: r.email });
    if (r.anonymousId !== undefined) ids.push({ anonymousId: r.anonymousId });
    const profileId = await findProfileId(deps.databases.vaultDb, deps.keys, ids);
    const db = deps.databases.db;
    const state = profileId ? await consentOf(db, profileId) : new Map();
    const pending = profileId ? await pendingPurposes(db, profileId) : [];
    // A messageId seen before records nothing again: say so, with the state as it stands.
    const duplicate = outcome.duplicates > 0 ? { duplicate: true } : {};
    return reply
      .code(outcome.confirmations.length > 0 ? 202 : 200)
      .send({ success: true, ...duplicate, consent: consentSummary(catalog, state, pending) });
  });

  // The double opt-in pages, in the browser's language (English or Polish, pages/strings.ts).
  async function confirmPage(request: FastifyRequest, reply: FastifyReply, token: string | undefined, act: boolean) {
    const lang = pageLanguage(request);
    const link = token ? verifyLink(deps.keys.linkSigning, 'confirm', token) : { ok: false as const };
    if (!link.ok) return showConfirmPage(reply, lang, { kind: 'invalid' });
    const id = link.payload.c;
    if (!act) {
      const state = await confirmationState(deps.databases.db, id);
      if (state.state === 'pending') return showConfirmPage(reply, lang, { kind: 'question', token: token as string, expiresAt: state.expiresAt });
      return outcomePage(reply, lang, state.state === 'confirmed' ? { outcome: 'already_confirmed', profileId: state.profileId, purposes: state.purposes } : { outcome: state.state });
    }
    let outboxRows = 0;
    const outcome = await confirmSubscription(deps.databases.db, id, { ipPrefix: truncateIp(request.ip) }, new Date(), async (trx, profileId) => {
      const reacted = await reactToConsent(trx, deps.batch.automation, profileId);
      if (reacted.ok) outboxRows = reacted.outcome.outboxWritten;
      else request.log.error({ error: reacted.error }, 'the rules failed after a confirmation; it is recorded and the person marked for a re-check');
    });
    await relayAfterCommit(deps, outboxRows);
    return outcomePage(reply, lang, outcome);
  }

  function outcomePage(reply: FastifyReply, lang: PageLanguage, outcome: Awaited<ReturnType<typeof confirmSubscription>>) {
    switch (outcome.outcome) {
      case 'expired':
        return showConfirmPage(reply, lang, { kind: 'expired' });
      case 'not_found':
        return showConfirmPage(reply, lang, { kind: 'gone' });
      case 'confirmed':
      case 'already_confirmed': {
        const preferencesUrl = preferenceLink(deps.config.http.publicUrl, deps.keys.linkSigning, outcome.profileId);
        return showConfirmPage(reply, lang, { kind: 'confirmed', already: outcome.outcome === 'already_confirmed', preferencesUrl });
      }
    }
  }

  app.get('/consent/confirm', async (request, reply) => {
    const token = (request.query as Record<string, unknown>).token;
    return confirmPage(request, reply, typeof token === 'string' ? token : undefined, false);
  });
  app.post('/consent/confirm', async (request, reply) => {
    // In the handler, not a scope hook: the JSON POST /v1/consent beside it is called from other
    // sites by design (CORS allow-list), this form only from our own page (ASVS 5.0 V3.5.1).
    const crossSite = crossSiteReason(request, originOf(deps.config.http.publicUrl));
    if (crossSite) return refuseCrossSite(request, reply, crossSite);
    const token = formValues(request, 'token')[0] ?? (request.query as Record<string, unknown>).token;
    return confirmPage(request, reply, typeof token === 'string' ? token : undefined, true);
  });
}

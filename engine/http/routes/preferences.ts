import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { pendingPurposes } from '../../consent/confirmations';
import { decide } from '../../consent/gate';
import { appendLedger, consentOf, type LedgerEntry } from '../../consent/ledger';
import { verifyLink } from '../../consent/links';
import type { PurposeCatalog, PurposeDefinition } from '../../consent/purposes';
import { consentSummary } from '../../consent/summary';
import { truncateIp } from '../../privacy/ip';
import { reactToConsent } from '../../automation/react-to-consent';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import type { HttpDeps } from '../deps';
import { requestForgetEmail } from './forget';
import { forgetPage } from '../pages/forget-page';
import { describePurpose, preferenceLanguages, preferencesErrorPage, preferencesPage } from '../pages/preferences-page';
import { guardFormPosts } from '../pages/same-origin';
import { acceptForms, formValues } from '../pages/respond';
import { type PageLanguage, pageLanguage } from '../pages/strings';

/** What the page shows about the purposes, hashed as the notice of a choice made on it (GDPR Art. 7(1)). */
function shownText(catalog: PurposeCatalog, lang: PageLanguage): string {
  return catalog
    .all()
    .map((p) => `${p.name}\n${describePurpose(p, lang)}\n${p.legalBasis}\n${p.retention}`)
    .join('\n\n');
}

/**
 * The preference page, `GET|POST /p/:token`: signed per person (no login), it shows each purpose with
 * its description and the person's current state, and records changes with method `preference_page`.
 * Withdrawing is as easy as granting: one untick (GDPR Art. 7(3)).
 */
export async function preferenceRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  acceptForms(app);
  // A POST sent by a browser from another site is refused before it is read (pages/same-origin.ts).
  guardFormPosts(app, deps.config.http.publicUrl);
  // The purposes are read at each request, so a reload of the rules applies from the next one.
  const catalogNow = () => deps.rules.purposes;

  const langOf = (request: FastifyRequest) => pageLanguage(request, preferenceLanguages(catalogNow()));

  async function profileFor(request: FastifyRequest, reply: FastifyReply, lang: PageLanguage): Promise<string | undefined> {
    const token = (request.params as { token: string }).token;
    const link = verifyLink(deps.keys.linkSigning, 'prefs', token);
    if (!link.ok) {
      preferencesErrorPage(reply, lang, 'invalid');
      return undefined;
    }
    const exists = await deps.databases.db.selectFrom('app.profiles').select('id').where('id', '=', link.payload.p).executeTakeFirst();
    if (!exists) {
      preferencesErrorPage(reply, lang, 'gone');
      return undefined;
    }
    return link.payload.p;
  }

  async function render(reply: FastifyReply, lang: PageLanguage, profileId: string, saved: boolean, token: string) {
    const db = deps.databases.db;
    const catalog = catalogNow();
    const summary = consentSummary(catalog, await consentOf(db, profileId), await pendingPurposes(db, profileId));
    return preferencesPage(reply, lang, { token, catalog, summary, saved });
  }

  app.get('/:token', async (request, reply) => {
    const lang = langOf(request);
    const profileId = await profileFor(request, reply, lang);
    return profileId ? render(reply, lang, profileId, false, (request.params as { token: string }).token) : reply;
  });

  // "Forget me" (GDPR Art. 17): confirmed by a link sent to the person's mailbox (routes/forget.ts).
  app.post('/:token/forget', async (request, reply) => {
    const lang = langOf(request);
    const profileId = await profileFor(request, reply, lang);
    if (!profileId) return reply;
    await requestForgetEmail(deps, profileId);
    return forgetPage(reply, lang, { kind: 'link_sent' });
  });

  app.post('/:token', async (request, reply) => {
    const lang = langOf(request);
    const profileId = await profileFor(request, reply, lang);
    if (!profileId) return reply;
    const catalog = catalogNow();
    const shown = new Set(formValues(request, 'shown').filter((name) => catalog.get(name)));
    const ticked = new Set(formValues(request, 'purpose'));
    const now = new Date();
    const notice = { id: 'preference_page', version: 1, hash: createHash('sha256').update(shownText(catalog, lang)).digest() };
    let outboxRows = 0;
    await deps.databases.db.transaction().execute(async (trx) => {
      const state = await consentOf(trx, profileId);
      const entries: LedgerEntry[] = [];
      for (const name of shown) {
        const definition = catalog.get(name) as PurposeDefinition;
        const allowed = decide(catalog, state, { purposes: [name] }).allowed;
        const wanted = ticked.has(name);
        if (wanted === allowed) continue;
        entries.push({
          profileId,
          purpose: name,
          // Unticking a consent withdraws it (Art. 7(3)); unticking a legitimate interest objects (Art. 21).
          decision: wanted ? 'granted' : definition.legalBasis === 'consent' ? 'withdrawn' : 'objected',
          occurredAt: now,
          sourceKind: 'preference_page',
          method: 'preference_page',
          notice,
          ipPrefix: truncateIp(request.ip),
        });
      }
      await appendLedger(trx, entries);
      if (entries.length > 0) {
        const reacted = await reactToConsent(trx, { compiled: deps.rules.compiled, catalog }, profileId);
        if (reacted.ok) outboxRows = reacted.outcome.outboxWritten;
        else request.log.error({ error: reacted.error }, 'the rules failed after a preference change; the change is recorded and the person marked for a re-check');
      }
    });
    await relayAfterCommit(deps, outboxRows);
    return render(reply, lang, profileId, true, (request.params as { token: string }).token);
  });
}

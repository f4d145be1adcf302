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
import { escapeHtml } from '../pages/layout';
import { FORGET_TEXT, forgetSection, requestForgetEmail } from './forget';
import { guardFormPosts } from '../pages/same-origin';
import { acceptForms, formValues, preferredLanguage, sendPage } from '../pages/respond';

const TEXT = {
  en: {
    title: 'Your privacy choices',
    intro: 'Here is what we may do with your data and what you have chosen. Change any of it; it takes effect at once.',
    consent: 'needs your consent',
    legitimate: 'based on our legitimate interest; untick to object',
    kept: 'Kept for',
    save: 'Save my choices',
    saved: 'Your choices are saved.',
    pending: 'waiting for you to confirm by the link we emailed',
    invalid: 'This link is not valid',
    invalidBody: 'This preferences link is incomplete or has been altered, so nothing was shown or changed. Use the link from one of our emails.',
    gone: 'We hold no data about you',
    goneBody: 'There is nothing to choose: we hold no data linked to this link any more.',
  },
  pl: {
    title: 'Twoje ustawienia prywatności',
    intro: 'Oto, co możemy robić z Twoimi danymi i co wybrałeś(-aś). Możesz zmienić każdą zgodę; zmiana działa od razu.',
    consent: 'wymaga Twojej zgody',
    legitimate: 'na podstawie naszego prawnie uzasadnionego interesu; odznacz, aby wnieść sprzeciw',
    kept: 'Przechowujemy przez',
    save: 'Zapisz moje wybory',
    saved: 'Twoje wybory zostały zapisane.',
    pending: 'czeka na potwierdzenie linkiem z wiadomości e-mail',
    invalid: 'Ten link jest nieprawidłowy',
    invalidBody: 'Ten link do ustawień jest niepełny lub został zmieniony, więc niczego nie pokazano ani nie zmieniono. Użyj linku z jednej z naszych wiadomości.',
    gone: 'Nie przechowujemy Twoich danych',
    goneBody: 'Nie ma czego wybierać: nie przechowujemy już danych powiązanych z tym linkiem.',
  },
} as const;
type Lang = keyof typeof TEXT;

function languages(catalog: PurposeCatalog): Lang[] {
  const described = new Set(catalog.all().flatMap((p) => Object.keys(p.description)));
  return (Object.keys(TEXT) as Lang[]).filter((lang) => lang === 'en' || described.has(lang));
}

const describe = (p: PurposeDefinition, lang: Lang) => p.description[lang] ?? p.description.en ?? '';

/** What the page shows about the purposes, hashed as the notice of a choice made on it (GDPR Art. 7(1)). */
function shownText(catalog: PurposeCatalog, lang: Lang): string {
  return catalog
    .all()
    .map((p) => `${p.name}\n${describe(p, lang)}\n${p.legalBasis}\n${p.retention}`)
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

  async function profileFor(request: FastifyRequest, reply: FastifyReply, lang: Lang): Promise<string | undefined> {
    const token = (request.params as { token: string }).token;
    const link = verifyLink(deps.keys.linkSigning, 'prefs', token);
    if (!link.ok) {
      sendPage(reply, 400, lang, TEXT[lang].invalid, `<p class="notice error">${escapeHtml(TEXT[lang].invalidBody)}</p>`);
      return undefined;
    }
    const exists = await deps.databases.db.selectFrom('app.profiles').select('id').where('id', '=', link.payload.p).executeTakeFirst();
    if (!exists) {
      sendPage(reply, 410, lang, TEXT[lang].gone, `<p class="notice">${escapeHtml(TEXT[lang].goneBody)}</p>`);
      return undefined;
    }
    return link.payload.p;
  }

  async function render(reply: FastifyReply, lang: Lang, profileId: string, saved: boolean, token: string) {
    const t = TEXT[lang];
    const db = deps.databases.db;
    const catalog = catalogNow();
    const summary = consentSummary(catalog, await consentOf(db, profileId), await pendingPurposes(db, profileId));
    const fieldsets = catalog
      .all()
      .map((p) => {
        const s = summary[p.name];
        // Purpose names are [a-z0-9_] (schemas/consent.ts), escaped all the same: every value is.
        const id = escapeHtml(`purpose-${p.name}`);
        return `<fieldset><legend>${escapeHtml(p.name.replace(/_/g, ' '))}</legend>
<input type="hidden" name="shown" value="${escapeHtml(p.name)}">
<label for="${id}"><input type="checkbox" id="${id}" name="purpose" value="${escapeHtml(p.name)}"${s?.allowed ? ' checked' : ''}> ${escapeHtml(describe(p, lang))}</label>
<p class="muted">${escapeHtml(p.legalBasis === 'consent' ? t.consent : t.legitimate)}. ${escapeHtml(t.kept)} ${escapeHtml(p.retention)}.${s?.pendingConfirmation ? ` <strong>${escapeHtml(t.pending)}</strong>` : ''}</p>
</fieldset>`;
      })
      .join('\n');
    return sendPage(
      reply,
      200,
      lang,
      t.title,
      `${saved ? `<p class="notice" role="status">${escapeHtml(t.saved)}</p>` : ''}<p>${escapeHtml(t.intro)}</p>
<form method="post">
${fieldsets}
<button type="submit">${escapeHtml(t.save)}</button>
</form>
${forgetSection(lang, token)}`,
    );
  }

  app.get('/:token', async (request, reply) => {
    const lang = preferredLanguage(request, languages(catalogNow())) as Lang;
    const profileId = await profileFor(request, reply, lang);
    return profileId ? render(reply, lang, profileId, false, (request.params as { token: string }).token) : reply;
  });

  // "Forget me" (GDPR Art. 17): confirmed by a link sent to the person's mailbox (routes/forget.ts).
  app.post('/:token/forget', async (request, reply) => {
    const lang = preferredLanguage(request, languages(catalogNow())) as Lang;
    const profileId = await profileFor(request, reply, lang);
    if (!profileId) return reply;
    await requestForgetEmail(deps, profileId);
    return sendPage(reply, 202, lang, FORGET_TEXT[lang].section, `<p class="notice" role="status">${escapeHtml(FORGET_TEXT[lang].sent)}</p>`);
  });

  app.post('/:token', async (request, reply) => {
    const lang = preferredLanguage(request, languages(catalogNow())) as Lang;
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

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { verifyLink } from '../../consent/links';
import { relayAfterCommit } from '../../outbox/relay-after-commit';
import { createErasureRequest } from '../../privacy/erasure/request';
import type { HttpDeps } from '../deps';
import { escapeHtml } from '../pages/layout';
import { guardFormPosts } from '../pages/same-origin';
import { acceptForms, preferredLanguage, sendPage } from '../pages/respond';

/** How long the emailed "forget me" link works. */
const LINK_DAYS = 7;

export const FORGET_TEXT = {
  en: {
    section: 'Erase all my data',
    explain: 'We delete your profile, activity, consents and subscriptions, everywhere we keep them, and stop all emails. We email you a link to confirm first.',
    ask: 'Email me the confirmation link',
    sent: 'We have emailed you a link. Open it to confirm; nothing is erased until you do.',
    confirmTitle: 'Erase all your data?',
    confirmBody: 'This deletes everything we hold about you and cannot be undone. You will receive no more email from us.',
    confirm: 'Yes, erase my data',
    doneTitle: 'Your data is being erased',
    doneBody: 'Your request is recorded under reference {id}. The erasure runs within minutes, at the latest within 30 days (GDPR Art. 12(3)).',
    invalid: 'This link is not valid',
    invalidBody: 'This link is incomplete, altered or expired, so nothing was erased. Ask again from your preference page.',
    gone: 'We hold no data about you',
    goneBody: 'There is nothing left to erase.',
  },
  pl: {
    section: 'Usuń wszystkie moje dane',
    explain: 'Usuniemy Twój profil, aktywność, zgody i subskrypcje ze wszystkich miejsc, w których je przechowujemy, i nie wyślemy już żadnej wiadomości. Najpierw wyślemy Ci link z prośbą o potwierdzenie.',
    ask: 'Wyślij mi link potwierdzający',
    sent: 'Wysłaliśmy Ci link. Otwórz go, aby potwierdzić; do tego czasu nic nie zostanie usunięte.',
    confirmTitle: 'Usunąć wszystkie Twoje dane?',
    confirmBody: 'To usunie wszystko, co o Tobie przechowujemy, i nie można tego cofnąć. Nie otrzymasz od nas więcej wiadomości.',
    confirm: 'Tak, usuń moje dane',
    doneTitle: 'Twoje dane są usuwane',
    doneBody: 'Twoje żądanie zapisaliśmy pod numerem {id}. Usunięcie nastąpi w ciągu kilku minut, najpóźniej w ciągu 30 dni (art. 12 ust. 3 RODO).',
    invalid: 'Ten link jest nieprawidłowy',
    invalidBody: 'Ten link jest niepełny, zmieniony lub wygasł, więc niczego nie usunięto. Poproś ponownie na stronie ustawień.',
    gone: 'Nie przechowujemy Twoich danych',
    goneBody: 'Nie ma już czego usuwać.',
  },
} as const;
export type ForgetLang = keyof typeof FORGET_TEXT;

/** The preference page's section: a form posting to /p/:token/forget. */
export function forgetSection(lang: ForgetLang, prefsToken: string): string {
  const t = FORGET_TEXT[lang];
  return `<section aria-labelledby="forget"><h2 id="forget">${escapeHtml(t.section)}</h2>
<p>${escapeHtml(t.explain)}</p>
<form method="post" action="/p/${escapeHtml(encodeURIComponent(prefsToken))}/forget"><button type="submit">${escapeHtml(t.ask)}</button></form></section>`;
}

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
  const langOf = (request: FastifyRequest) => preferredLanguage(request, Object.keys(FORGET_TEXT)) as ForgetLang;
  const check = (token: string) => {
    const link = verifyLink(deps.keys.linkSigning, 'forget', token);
    return link.ok && link.payload.x * 1000 > Date.now() ? link.payload.p : undefined;
  };
  const invalid = (lang: ForgetLang) => `<p class="notice error">${escapeHtml(FORGET_TEXT[lang].invalidBody)}</p>`;

  app.get('/:token', async (request, reply) => {
    const lang = langOf(request);
    const t = FORGET_TEXT[lang];
    if (!check((request.params as { token: string }).token)) return sendPage(reply, 400, lang, t.invalid, invalid(lang));
    return sendPage(reply, 200, lang, t.confirmTitle, `<p>${escapeHtml(t.confirmBody)}</p>
<form method="post"><button type="submit">${escapeHtml(t.confirm)}</button></form>`);
  });

  app.post('/:token', async (request, reply) => {
    const lang = langOf(request);
    const t = FORGET_TEXT[lang];
    const profileId = check((request.params as { token: string }).token);
    if (!profileId) return sendPage(reply, 400, lang, t.invalid, invalid(lang));
    const created = await createErasureRequest(deps.databases, deps.config, deps.keys, {
      identifier: { profileId },
      origin: 'self_service',
      requestedBy: 'self-service link',
    });
    if (!created.ok) return sendPage(reply, 410, lang, t.gone, `<p class="notice">${escapeHtml(t.goneBody)}</p>`);
    if (created.created) await relayAfterCommit(deps, 1);
    request.log.info({ requestId: created.id, created: created.created }, 'erasure requested by the person');
    return sendPage(reply, 202, lang, t.doneTitle, `<p class="notice" role="status">${escapeHtml(t.doneBody.replace('{id}', created.id))}</p>`);
  });
}

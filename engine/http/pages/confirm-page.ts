import type { FastifyReply } from 'fastify';
import { escapeHtml } from './layout';
import { sendPage } from './respond';
import { fillHtml, fillText, PAGE_STRINGS, pageDate, type PageLanguage } from './strings';

/** The double opt-in pages, /v1/consent/confirm: the question (a GET grants nothing), and each outcome. */
export type ConfirmView =
  | { readonly kind: 'question'; readonly token: string; readonly expiresAt: Date }
  | { readonly kind: 'confirmed'; readonly already: boolean; readonly preferencesUrl: string }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'expired' }
  | { readonly kind: 'gone' };

export function confirmPage(reply: FastifyReply, lang: PageLanguage, view: ConfirmView): FastifyReply {
  const t = PAGE_STRINGS[lang];
  switch (view.kind) {
    case 'question':
      // A button, not an automatic grant: mail scanners open links, and only the person may consent.
      return sendPage(reply, 200, lang, t.confirmTitle, `<p>${fillText(t.confirmQuestion, {})}</p>
<form method="post" action="confirm"><input type="hidden" name="token" value="${escapeHtml(view.token)}"><button type="submit">${fillText(t.confirmButton, {})}</button></form>
<p class="muted">${fillText(t.confirmIgnore, { date: pageDate(lang, view.expiresAt) })}</p>`);
    case 'confirmed': {
      const link = `<a href="${escapeHtml(view.preferencesUrl)}">${fillText(t.confirmedPrefsLink, {})}</a>`;
      return sendPage(reply, 200, lang, t.confirmedTitle, `<p class="notice" role="status">${fillText(view.already ? t.confirmedBefore : t.confirmedNow, {})}</p>
<p>${fillHtml(t.confirmedPrefs, { link })}</p>`);
    }
    case 'invalid':
      return sendPage(reply, 400, lang, t.invalidTitle, `<p class="notice error">${fillText(t.confirmInvalidBody, {})}</p>`);
    case 'expired':
      return sendPage(reply, 410, lang, t.confirmExpiredTitle, `<p class="notice error">${fillText(t.confirmExpiredBody, {})}</p>`);
    case 'gone':
      return sendPage(reply, 410, lang, t.confirmGoneTitle, `<p class="notice error">${fillText(t.confirmGoneBody, {})}</p>`);
  }
}

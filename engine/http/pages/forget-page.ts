import type { FastifyReply } from 'fastify';
import { escapeHtml } from './layout';
import { sendPage } from './respond';
import { fillText, PAGE_STRINGS, type PageLanguage } from './strings';

/** The preference page's "forget me" section (GDPR Art. 17): a form posting to /p/:token/forget. */
export function forgetSection(lang: PageLanguage, prefsToken: string): string {
  const t = PAGE_STRINGS[lang];
  return `<section aria-labelledby="forget"><h2 id="forget">${fillText(t.forgetSection, {})}</h2>
<p>${fillText(t.forgetExplain, {})}</p>
<form method="post" action="/p/${escapeHtml(encodeURIComponent(prefsToken))}/forget"><button type="submit">${fillText(t.forgetAsk, {})}</button></form></section>`;
}

/** The pages of "forget me": the emailed link sent, the question at /f/:token, and each outcome of its POST. */
export type ForgetView =
  | { readonly kind: 'link_sent' }
  | { readonly kind: 'question' }
  | { readonly kind: 'requested'; readonly requestId: string }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'gone' };

export function forgetPage(reply: FastifyReply, lang: PageLanguage, view: ForgetView): FastifyReply {
  const t = PAGE_STRINGS[lang];
  switch (view.kind) {
    case 'link_sent':
      return sendPage(reply, 202, lang, t.forgetSentTitle, `<p class="notice" role="status">${fillText(t.forgetSent, {})}</p>`);
    case 'question':
      return sendPage(reply, 200, lang, t.forgetConfirmTitle, `<p>${fillText(t.forgetConfirmBody, {})}</p>
<form method="post"><button type="submit">${fillText(t.forgetConfirm, {})}</button></form>
<p class="muted">${fillText(t.forgetKeep, {})}</p>`);
    case 'requested':
      return sendPage(reply, 202, lang, t.forgetDoneTitle, `<p class="notice" role="status">${fillText(t.forgetDoneBody, { id: view.requestId })}</p>`);
    case 'invalid':
      return sendPage(reply, 400, lang, t.invalidTitle, `<p class="notice error">${fillText(t.forgetInvalidBody, {})}</p>`);
    case 'gone':
      return sendPage(reply, 410, lang, t.forgetGoneTitle, `<p class="notice">${fillText(t.forgetGoneBody, {})}</p>`);
  }
}

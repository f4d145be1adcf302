import type { FastifyReply } from 'fastify';
import { sendPage } from './respond';
import { fillText, PAGE_STRINGS, type PageLanguage } from './strings';

/** The unsubscribe pages, /u/:token: the question (a GET never changes anything), and each outcome of the POST. */
export type UnsubscribeView = { readonly kind: 'question' } | { readonly kind: 'done' } | { readonly kind: 'invalid' } | { readonly kind: 'gone' };

export function unsubscribePage(reply: FastifyReply, lang: PageLanguage, view: UnsubscribeView): FastifyReply {
  const t = PAGE_STRINGS[lang];
  switch (view.kind) {
    case 'question':
      // The hidden field is the RFC 8058 body, so the page's button and a mail client's one-click POST are one request.
      return sendPage(reply, 200, lang, t.unsubscribeTitle, `<p>${fillText(t.unsubscribeQuestion, {})}</p>
<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">${fillText(t.unsubscribeButton, {})}</button></form>
<p class="muted">${fillText(t.unsubscribeKeep, {})}</p>`);
    case 'done':
      return sendPage(reply, 200, lang, t.unsubscribedTitle, `<p class="notice" role="status">${fillText(t.unsubscribedBody, {})}</p>`);
    case 'invalid':
      return sendPage(reply, 400, lang, t.invalidTitle, `<p class="notice error">${fillText(t.unsubscribeInvalidBody, {})}</p>`);
    case 'gone':
      return sendPage(reply, 410, lang, t.unsubscribeGoneTitle, `<p class="notice error">${fillText(t.unsubscribeGoneBody, {})}</p>`);
  }
}

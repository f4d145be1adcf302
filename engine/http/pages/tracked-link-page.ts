import type { FastifyReply } from 'fastify';
import { sendPage } from './respond';
import { fillText, PAGE_STRINGS, type PageLanguage } from './strings';

/** The page of a tracked email link (`GET /c/:token`) whose token is not ours: a 400, never a redirect. */
export function trackedLinkInvalidPage(reply: FastifyReply, lang: PageLanguage): FastifyReply {
  const t = PAGE_STRINGS[lang];
  return sendPage(reply, 400, lang, t.invalidTitle, `<p class="notice error">${fillText(t.trackedLinkInvalidBody, {})}</p>`);
}

import type { FastifyReply } from 'fastify';
import type { PurposeCatalog, PurposeDefinition } from '../../consent/purposes';
import type { PurposeSummary } from '../../consent/summary';
import { forgetSection } from './forget-page';
import { escapeHtml } from './layout';
import { sendPage } from './respond';
import { fillText, PAGE_STRINGS, type PageLanguage, pageRetention } from './strings';

/** A purpose's description in the language, English when the purposes file has none in it. */
export const describePurpose = (p: PurposeDefinition, lang: PageLanguage): string => p.description[lang] ?? p.description.en ?? '';

/** The languages the preference page can be shown in: its own words are in every one, the purposes' where the purposes file has them. */
export function preferenceLanguages(catalog: PurposeCatalog): PageLanguage[] {
  const described = new Set(catalog.all().flatMap((p) => Object.keys(p.description)));
  return (Object.keys(PAGE_STRINGS) as PageLanguage[]).filter((lang) => lang === 'en' || described.has(lang));
}

export interface PreferencesView {
  readonly token: string;
  readonly catalog: PurposeCatalog;
  readonly summary: Readonly<Record<string, PurposeSummary>>;
  readonly saved: boolean;
}

/**
 * The preference page, /p/:token. Each purpose is one checkbox whose label is its description (the
 * purpose's name is an identifier of the rules, not words people read, and has no translation); its
 * legal basis, retention and any pending confirmation are tied to the checkbox by aria-describedby.
 */
export function preferencesPage(reply: FastifyReply, lang: PageLanguage, view: PreferencesView): FastifyReply {
  const t = PAGE_STRINGS[lang];
  const purposes = view.catalog
    .all()
    .map((p) => {
      const s = view.summary[p.name];
      // Purpose names are [a-z0-9_] (schemas/consent.ts), escaped all the same: every value is.
      const id = escapeHtml(`purpose-${p.name}`);
      const details = `${fillText(p.legalBasis === 'consent' ? t.prefsConsent : t.prefsLegitimate, {})} ${escapeHtml(pageRetention(lang, p.retention))}${
        s?.pendingConfirmation ? ` <strong>${fillText(t.prefsPending, {})}</strong>` : ''
      }`;
      return `<p class="purpose"><input type="hidden" name="shown" value="${escapeHtml(p.name)}">
<label for="${id}"><input type="checkbox" id="${id}" name="purpose" value="${escapeHtml(p.name)}"${s?.allowed ? ' checked' : ''} aria-describedby="${id}-details"> ${escapeHtml(describePurpose(p, lang))}</label></p>
<p class="muted details" id="${id}-details">${details}</p>`;
    })
    .join('\n');
  return sendPage(
    reply,
    200,
    lang,
    t.prefsTitle,
    `${view.saved ? `<p class="notice" role="status">${fillText(t.prefsSaved, {})}</p>\n` : ''}<p>${fillText(t.prefsIntro, {})}</p>
<form method="post">
<fieldset><legend>${fillText(t.prefsChoices, {})}</legend>
${purposes}
</fieldset>
<button type="submit">${fillText(t.prefsSave, {})}</button>
</form>
${forgetSection(lang, view.token)}`,
  );
}

/** The preference page's errors: a link that is not ours (400), or a person we no longer hold (410). */
export function preferencesErrorPage(reply: FastifyReply, lang: PageLanguage, kind: 'invalid' | 'gone'): FastifyReply {
  const t = PAGE_STRINGS[lang];
  return kind === 'invalid'
    ? sendPage(reply, 400, lang, t.invalidTitle, `<p class="notice error">${fillText(t.prefsInvalidBody, {})}</p>`)
    : sendPage(reply, 410, lang, t.prefsGoneTitle, `<p class="notice">${fillText(t.prefsGoneBody, {})}</p>`);
}

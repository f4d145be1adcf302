import type { FastifyRequest } from 'fastify';
import { retentionText } from '../routes/kit-texts';
import { EN, type PageStringKey, type PageStrings } from './locales/en';
import { PL } from './locales/pl';
import { escapeHtml } from './layout';
import { preferredLanguage } from './respond';

/**
 * The strings tables of the pages people open from emails, one per language shipped. A page is in
 * the language the browser asks for first (Accept-Language, RFC 9110 §12.5.4) among those the page
 * can be shown in; English otherwise. A profile's `language` trait, where a website sends one, is not
 * consulted: the browser in front of the person is the better witness of what they read.
 */
export const PAGE_STRINGS: Readonly<Record<'en' | 'pl', PageStrings>> = Object.freeze({ en: EN, pl: PL });
export type PageLanguage = keyof typeof PAGE_STRINGS;
export const PAGE_LANGUAGES = Object.keys(PAGE_STRINGS) as PageLanguage[];
export type { PageStringKey, PageStrings };

export function pageLanguage(request: FastifyRequest, available: readonly PageLanguage[] = PAGE_LANGUAGES): PageLanguage {
  return preferredLanguage(request, available) as PageLanguage;
}

/**
 * A string as HTML: the template escaped, then each `{name}` replaced by `html[name]`, which the
 * caller must have built from escaped values (an escaped text, or a link of escaped parts).
 */
export function fillHtml(template: string, html: Readonly<Record<string, string>> = {}): string {
  return escapeHtml(template).replace(/\{(\w+)\}/g, (whole, name: string) => html[name] ?? whole);
}

/** A string as HTML with `{name}` replaced by plain-text values (escaped here). */
export function fillText(template: string, values: Readonly<Record<string, string>>): string {
  return fillHtml(template, Object.fromEntries(Object.entries(values).map(([k, v]) => [k, escapeHtml(v)])));
}

/** A date as people read it in the language (`29 November 2026`, `29 listopada 2026`), in UTC. */
export function pageDate(lang: PageLanguage, date: Date): string {
  return new Intl.DateTimeFormat(lang === 'en' ? 'en-GB' : lang, { dateStyle: 'long', timeZone: 'UTC' }).format(date);
}

/** "13mo" → "Kept for 13 months." / "Przechowujemy przez 13 miesięcy." (the website kit's words). */
export function pageRetention(lang: PageLanguage, retention: string): string {
  return retentionText(lang, retention);
}

import Fastify, { type FastifyReply } from 'fastify';
import { confirmPage } from '../../engine/http/pages/confirm-page';
import { forgetPage } from '../../engine/http/pages/forget-page';
import { preferencesErrorPage, preferencesPage } from '../../engine/http/pages/preferences-page';
import { refuseCrossSite } from '../../engine/http/pages/same-origin';
import { PAGE_LANGUAGES, PAGE_STRINGS, type PageLanguage, pageLanguage, pageRetention } from '../../engine/http/pages/strings';
import { trackedLinkInvalidPage } from '../../engine/http/pages/tracked-link-page';
import { unsubscribePage } from '../../engine/http/pages/unsubscribe-page';
import { englishLeftIn } from '../browser/support/page-strings';
import { shippedCatalog } from '../support/rules';

const placeholders = (value: string) => [...value.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

/** The text a person reads: the title and the body without tags, entities decoded. */
function visibleText(html: string): string {
  return html
    .replace(/<style>[^<]*<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

const catalog = shippedCatalog();
const summary = Object.fromEntries(
  catalog.all().map((p) => [p.name, { allowed: p.name !== 'profiling', state: 'granted' as const, since: null, legalBasis: p.legalBasis, pendingConfirmation: p.name === 'email_marketing' }]),
);

/** Every page and error page the strings tables serve, rendered as the routes render them. */
const PAGES: Record<string, (reply: FastifyReply, lang: PageLanguage) => FastifyReply> = {
  'unsubscribe question': (reply, lang) => unsubscribePage(reply, lang, { kind: 'question' }),
  'unsubscribe done': (reply, lang) => unsubscribePage(reply, lang, { kind: 'done' }),
  'unsubscribe invalid': (reply, lang) => unsubscribePage(reply, lang, { kind: 'invalid' }),
  'unsubscribe gone': (reply, lang) => unsubscribePage(reply, lang, { kind: 'gone' }),
  'preferences': (reply, lang) => preferencesPage(reply, lang, { token: 'abc.def', catalog, summary, saved: true }),
  'preferences invalid': (reply, lang) => preferencesErrorPage(reply, lang, 'invalid'),
  'preferences gone': (reply, lang) => preferencesErrorPage(reply, lang, 'gone'),
  'forget link sent': (reply, lang) => forgetPage(reply, lang, { kind: 'link_sent' }),
  'forget question': (reply, lang) => forgetPage(reply, lang, { kind: 'question' }),
  'forget requested': (reply, lang) => forgetPage(reply, lang, { kind: 'requested', requestId: '0b6c3f1e-1111-4222-8333-444455556666' }),
  'forget invalid': (reply, lang) => forgetPage(reply, lang, { kind: 'invalid' }),
  'forget gone': (reply, lang) => forgetPage(reply, lang, { kind: 'gone' }),
  'confirm question': (reply, lang) => confirmPage(reply, lang, { kind: 'question', token: 'abc.def', expiresAt: new Date('2026-12-06T10:00:00Z') }),
  'confirm done': (reply, lang) => confirmPage(reply, lang, { kind: 'confirmed', already: false, preferencesUrl: 'https://mail.example/p/abc.def' }),
  'confirm already': (reply, lang) => confirmPage(reply, lang, { kind: 'confirmed', already: true, preferencesUrl: 'https://mail.example/p/abc.def' }),
  'confirm invalid': (reply, lang) => confirmPage(reply, lang, { kind: 'invalid' }),
  'confirm expired': (reply, lang) => confirmPage(reply, lang, { kind: 'expired' }),
  'confirm gone': (reply, lang) => confirmPage(reply, lang, { kind: 'gone' }),
  'tracked link invalid': (reply, lang) => trackedLinkInvalidPage(reply, lang),
};

async function render(name: string, lang: PageLanguage): Promise<string> {
  const app = Fastify();
  app.get('/', async (_request, reply) => (PAGES[name] as (r: FastifyReply, l: PageLanguage) => FastifyReply)(reply, lang));
  app.post('/cross-site', async (request, reply) => refuseCrossSite(request, reply, 'other_origin'));
  try {
    if (name === 'cross-site refusal') return (await app.inject({ method: 'POST', url: '/cross-site', headers: { 'accept-language': lang } })).body;
    return (await app.inject({ method: 'GET', url: '/' })).body;
  } finally {
    await app.close();
  }
}

/** The English texts a page takes from elsewhere than the strings table: the purposes file, the retention wording. */
const ENGLISH_ELSEWHERE = [...catalog.all().map((p) => p.description.en ?? ''), ...catalog.all().map((p) => pageRetention('en', p.retention))];

describe('the strings tables of the pages people open from emails', () => {
  it('ships English and Polish with exactly the same keys, none empty, and the same placeholders in each string', () => {
    expect(PAGE_LANGUAGES).toEqual(['en', 'pl']);
    expect(Object.keys(PAGE_STRINGS.pl).sort()).toEqual(Object.keys(PAGE_STRINGS.en).sort());
    for (const lang of PAGE_LANGUAGES) {
      for (const [key, value] of Object.entries(PAGE_STRINGS[lang])) expect([lang, key, value.trim().length > 0]).toEqual([lang, key, true]);
    }
    for (const [key, en] of Object.entries(PAGE_STRINGS.en)) {
      const pl = PAGE_STRINGS.pl[key as keyof typeof PAGE_STRINGS.en];
      expect([key, placeholders(pl)]).toEqual([key, placeholders(en)]);
      // A Polish string equal to the English one is an untranslated one.
      expect([key, pl]).not.toEqual([key, en]);
    }
  });

  it.each([...Object.keys(PAGES), 'cross-site refusal'])('renders "%s" in Polish with no English string left, and in English with lang="en"', async (name) => {
    const pl = await render(name, 'pl');
    expect(pl).toContain('<html lang="pl">');
    expect(englishLeftIn(visibleText(pl), ENGLISH_ELSEWHERE)).toEqual([]);
    const en = await render(name, 'en');
    expect(en).toContain('<html lang="en">');
    // The check itself finds English: the same page in English is full of it.
    expect(englishLeftIn(visibleText(en), ENGLISH_ELSEWHERE).length).toBeGreaterThan(0);
  });

  it('chooses the language by Accept-Language: Polish when asked for first, English otherwise, never one refused with q=0', async () => {
    const app = Fastify();
    app.get('/', async (request) => pageLanguage(request));
    const chosen = async (header?: string) => (await app.inject({ method: 'GET', url: '/', headers: header === undefined ? {} : { 'accept-language': header } })).body;
    try {
      expect(await chosen('pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7')).toBe('pl');
      expect(await chosen('PL')).toBe('pl');
      expect(await chosen('de-DE, pl;q=0.5')).toBe('pl');
      expect(await chosen('en-GB,en;q=0.9,pl;q=0.8')).toBe('en');
      expect(await chosen('pl;q=0, de')).toBe('en');
      expect(await chosen('de')).toBe('en');
      expect(await chosen()).toBe('en');
    } finally {
      await app.close();
    }
  });
});

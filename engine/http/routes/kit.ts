import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type NoticeAnswer, NoticeQuery } from '../../../schemas/kit';
import type { PurposeCatalog, PurposeDefinition } from '../../consent/purposes';
import { kitScript } from '../kit/asset';
import { describeZodError, sendError } from '../errors';
import { preferredLanguage } from '../pages/respond';
import { anonymousRoutes } from './anonymous';
import { KIT_LANGUAGES, KIT_TEXT, type KitLanguage, legalBasisText, retentionText } from './kit-texts';
import { authenticate, type TrackingDeps } from './tracking';

/**
 * The website kit, inside the `/v1` scope (its per-address rate limit applies): the script
 * `GET /v1/cf.js`, the consent notice its pop-up and forms show `GET /v1/consent/notice`, and the
 * anonymous counts of visitors who did not consent `POST /v1/anonymous` (./anonymous.ts).
 */
export async function kitRoutes(app: FastifyInstance, deps: TrackingDeps): Promise<void> {
  app.get('/cf.js', (request, reply) => sendScript(request, reply));
  app.get('/consent/notice', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    // The write key first: its source decides whether this browser origin may read the answer at all.
    const sourceId = await authenticate(deps, request, reply, query.writeKey);
    if (!sourceId) return reply;
    const parsed = NoticeQuery.safeParse(query);
    if (!parsed.success) return sendError(reply, 'VALIDATION_FAILED', describeZodError(parsed.error), deps.metrics);
    const catalog = deps.rules.purposes;
    const lang = languageOf(request, parsed.data.lang);
    const ids = (parsed.data.id ?? '').split(',').map((id) => id.trim()).filter(Boolean);
    const id = chooseNotice(catalog, ids, lang);
    if (ids.length > 0 && id === undefined) {
      return sendError(reply, 'NOT_FOUND', `id: no notice ${ids.map((i) => `"${i}"`).join(' or ')} is declared under notices in rules/purposes.yaml`, deps.metrics);
    }
    // The latest version is the one to show; older ones stay listed for forms whose label still shows them.
    return reply
      .header('cache-control', 'public, max-age=300')
      .header('vary', 'Origin, Accept-Language')
      .send(noticeAnswer(catalog, id, lang));
  });
  await anonymousRoutes(app, deps);
}

function sendScript(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const script = kitScript();
  const gzip = acceptsGzip(request.headers['accept-encoding']);
  const etag = gzip ? script.gzipEtag : script.etag;
  reply
    .header('content-type', 'text/javascript; charset=utf-8')
    .header('etag', etag)
    // The same for every caller: replaces the scope's `Vary: Origin`.
    .header('vary', 'Accept-Encoding')
    .header('cache-control', 'public, max-age=3600')
    // `<script integrity=… crossorigin="anonymous">` needs a CORS answer to check the hash (W3C SRI §3.5);
    // the script is public and sent without credentials, so any origin may read it.
    .header('access-control-allow-origin', '*')
    .header('cross-origin-resource-policy', 'cross-origin');
  if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();
  if (gzip) reply.header('content-encoding', 'gzip');
  return reply.send(gzip ? script.gzip : script.body);
}

/** RFC 9110 §12.5.3: gzip (or `*`) listed with a non-zero weight. */
function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    if (coding.trim() !== 'gzip' && coding.trim() !== 'x-gzip' && coding.trim() !== '*') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/"x"` matches `"x"`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

function languageOf(request: FastifyRequest, asked: string | undefined): KitLanguage {
  const primary = asked?.toLowerCase().split('-')[0];
  if (primary !== undefined && (KIT_LANGUAGES as string[]).includes(primary)) return primary as KitLanguage;
  return preferredLanguage(request, KIT_LANGUAGES) as KitLanguage;
}

/**
 * The first of the ids that purposes.yaml declares. A notice's text has one language, so a
 * translation is declared as its own notice `<id>.<lang>` (e.g. `cookie_banner.pl`): the ledger then
 * names the text the person actually read. It is preferred when the visitor's language has one.
 */
function chooseNotice(catalog: PurposeCatalog, ids: readonly string[], lang: KitLanguage): string | undefined {
  for (const id of ids) {
    for (const candidate of lang === 'en' ? [id] : [`${id}.${lang}`, id]) {
      if (catalog.hasNotice(candidate)) return candidate;
    }
  }
  return undefined;
}

function noticeAnswer(catalog: PurposeCatalog, id: string | undefined, lang: KitLanguage): NoticeAnswer {
  const versions = id === undefined ? [] : catalog.noticeVersions(id);
  const latest = id === undefined ? undefined : catalog.notice(id, versions[versions.length - 1] ?? 0);
  const purposes = latest
    ? latest.purposes.map((name) => catalog.get(name)).filter((p): p is PurposeDefinition => p !== undefined)
    : catalog.all();
  return {
    lang,
    languages: KIT_LANGUAGES,
    notice: latest
      ? {
          id: latest.id,
          version: latest.version,
          lang: latest.id.endsWith(`.${lang}`) ? lang : 'en',
          text: latest.text,
          sha256: latest.hash.toString('hex'),
          purposes: [...latest.purposes],
          versions: versions.map((version) => ({ version, sha256: catalog.notice(latest.id, version)?.hash.toString('hex') ?? '' })),
        }
      : null,
    purposes: purposes.map((p) => ({
      name: p.name,
      description: p.description[lang] ?? p.description.en ?? p.name,
      legalBasis: p.legalBasis,
      legalBasisText: legalBasisText(lang, p.legalBasis),
      retention: p.retention,
      retentionText: retentionText(lang, p.retention),
      doubleOptIn: p.doubleOptIn,
      linksEvents: p.allows.has('link_events_to_profile'),
    })),
    ui: { ...KIT_TEXT[lang] },
  };
}

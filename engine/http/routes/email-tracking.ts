import type { FastifyInstance } from 'fastify';
import { verifyLink } from '../../consent/links';
import { recordEmailEvent } from '../../email/tracking';
import { EventPartitions } from '../../events/partitions';
import type { HttpDeps } from '../deps';
import { pageLanguage } from '../pages/strings';
import { trackedLinkInvalidPage } from '../pages/tracked-link-page';
import { TRANSPARENT_GIF } from './pixel';

/**
 * `GET /c/TOKEN`: a tracked link. The destination is inside the HMAC-signed token, so a tampered
 * token is a 400 page and never a redirect anywhere (no open redirect). `GET /o/TOKEN.gif`: the open
 * pixel, always the GIF. Recording happens only where the person's consent still allows it.
 */
export async function emailTrackingRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  const tracking = () => ({
    db: deps.databases.db,
    partitions,
    automation: { compiled: deps.rules.compiled, catalog: deps.rules.purposes },
  });
  const partitions = new EventPartitions(deps.databases.db);

  app.get('/c/:token', async (request, reply) => {
    const link = verifyLink(deps.keys.linkSigning, 'click', (request.params as { token: string }).token);
    if (!link.ok) {
      return trackedLinkInvalidPage(reply, pageLanguage(request));
    }
    // The person gets where they were going even if recording fails.
    await recordEmailEvent(tracking(), link.payload.s, 'Email Clicked', link.payload.u).catch((err: unknown) => request.log.warn({ err }, 'click not recorded'));
    return reply.code(302).header('location', link.payload.u).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').send();
  });

  app.get('/o/:file', async (request, reply) => {
    const file = (request.params as { file: string }).file;
    const link = file.endsWith('.gif') ? verifyLink(deps.keys.linkSigning, 'open', file.slice(0, -4)) : { ok: false as const };
    if (link.ok) await recordEmailEvent(tracking(), link.payload.s, 'Email Opened').catch((err: unknown) => request.log.warn({ err }, 'open not recorded'));
    return reply
      .code(200)
      .header('content-type', 'image/gif')
      .header('cache-control', 'no-cache, no-store, must-revalidate, private')
      .send(TRANSPARENT_GIF);
  });
}

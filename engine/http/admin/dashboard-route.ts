import type { FastifyInstance } from 'fastify';
import { JOB_CATALOG, QUEUE_NAMES } from '../../queues/catalog';
import type { HttpDeps } from '../deps';
import { sendPage } from '../pages/respond';
import { dashboardBody } from './dashboard-page';
import { listFailedJobs } from './queue-routes';
import { adminRoute } from './route-table';
import { csrfToken } from './session';

/** Failed jobs shown per queue; the JSON route pages through the rest. */
const LATEST_FAILED = 10;

/**
 * The queue dashboard for operators, `GET /admin/v1/dashboard`: server-rendered HTML, reachable with
 * a Bearer key or the browser session of /admin/login (a routine read: not audited, like GET /queues).
 */
export function dashboardRoute(app: FastifyInstance, deps: HttpDeps): void {
  const config = {
    roles: ['operator'],
    action: 'queues.dashboard',
    summary: 'The queue dashboard: counts per state and the latest failed jobs, with retry forms (HTML, no script)',
    response: { mediaType: 'text/html', description: 'The dashboard page' },
    browser: true,
  } as const;
  adminRoute(app, 'GET', '/dashboard', config, async (_input, request, reply) => {
    const [counts, failed] = await Promise.all([
      deps.queues.counts(),
      Promise.all(QUEUE_NAMES.map((name) => listFailedJobs(deps.queues, name, 0, LATEST_FAILED))),
    ]);
    const body = dashboardBody({
      keyName: request.apiKey?.name ?? '',
      generatedAt: new Date(),
      queues: QUEUE_NAMES.map((name, i) => ({
        name,
        description: JOB_CATALOG[name].description,
        counts: counts[name],
        failed: failed[i] ?? { total: 0, jobs: [] },
      })),
      csrf: request.adminSession ? csrfToken(deps.keys.linkSigning, request.adminSession) : undefined,
    });
    return sendPage(reply, 200, 'en', 'Queues', body);
  });
}

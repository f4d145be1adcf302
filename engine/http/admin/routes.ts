import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps';
import { auditRoutes } from './audit-routes';
import { campaignReportRoute } from './campaign-report-route';
import { requireApiKey, requireRouteDecisions } from './auth';
import { consentRoute } from './consent-route';
import { erasureRoutes } from './erasure-routes';
import { keysRoutes } from './keys-routes';
import { processingRecordsRoute } from './processing-records-route';
import { dashboardRoute } from './dashboard-route';
import { openApiRoute } from './openapi-route';
import { queueRoutes } from './queue-routes';
import type { AdminRouteTable } from './route-table';
import { rulesRoutes } from './rules-routes';
import { subjectExportRoute } from './subject-export-route';
import { subjectLookupRoute } from './subject-lookup-route';
import { subjectsRoute } from './subjects-route';

/**
 * The admin API, `/admin/v1`. Each route declares its roles and audit action (route-table.ts); the
 * role matrix is in the README ("Admin API") and test/integration/admin-roles.test.ts walks it.
 */
export async function adminRoutes(app: FastifyInstance, deps: HttpDeps, table: AdminRouteTable): Promise<void> {
  requireRouteDecisions(app, table);
  requireApiKey(app, deps);

  keysRoutes(app, deps);
  // privacy_officer: the person-level paths.
  subjectLookupRoute(app, deps);
  subjectExportRoute(app, deps);
  consentRoute(app, deps);
  erasureRoutes(app, deps);
  auditRoutes(app, deps);
  processingRecordsRoute(app, deps);
  // marketer and privacy_officer: a person typed in (write-only: nothing decrypted comes back).
  subjectsRoute(app, deps);
  // marketer and operator.
  rulesRoutes(app, deps);
  // marketer: what a campaign did, in counts.
  campaignReportRoute(app, deps);
  // operator: queue counts, dead letters, retries and the dashboard, in a scope that also takes the dashboard's forms.
  await app.register(async (scope) => {
    queueRoutes(scope, deps);
    dashboardRoute(scope, deps);
  });
  // every role: the OpenAPI document of all of the above.
  openApiRoute(app, deps, table);
}

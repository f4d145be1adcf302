import type { FastifyInstance } from 'fastify';
import { CampaignReport, CampaignReportParams } from '../../../schemas/campaign-report';
import { campaignHasHistory, campaignReportSnapshot } from '../../reports/campaign-report';
import type { HttpDeps } from '../deps';
import { sendError } from '../errors';
import { adminRoute } from './route-table';

/**
 * `GET /admin/v1/campaigns/:id/stats`: what a campaign did, for the marketer whose campaign it is.
 * Aggregates only (engine/reports/campaign-report.ts): how many, never who, so it reads no personal
 * data and is audited as a read of the rules, not of a person. A campaign no longer in the running
 * rule set still has a report while anything was recorded for it.
 */
export function campaignReportRoute(app: FastifyInstance, deps: HttpDeps): void {
  const config = {
    roles: ['marketer'],
    action: 'campaign.stats',
    summary: 'A campaign in counts: enrolled; per send step scheduled, sent, skipped by reason, opened, clicked, unsubscribed, bounced; exit-goal conversions',
    params: CampaignReportParams,
    response: CampaignReport,
  } as const;
  adminRoute(app, 'GET', '/campaigns/:id/stats', config, async ({ params }, _request, reply) => {
    const campaign = deps.rules.compiled.campaigns.get(params.id);
    if (!campaign && !(await campaignHasHistory(deps.databases.db, params.id))) {
      const known = [...deps.rules.compiled.campaigns.keys()].sort();
      return sendError(reply, 'NOT_FOUND', `no campaign ${params.id}: not in the running rule set and nothing recorded for it (running: ${known.join(', ') || 'none'})`, deps.metrics);
    }
    reply.header('cache-control', 'no-store');
    return campaignReportSnapshot(deps.databases.db, params.id, campaign);
  });
}

import type { FastifyInstance } from 'fastify';
import { CreateApiKeyBody } from '../../../schemas/api-keys';
import { AdminConsentRequest } from '../../../schemas/consent';
import { pendingPurposes } from '../../consent/confirmations';
import { appendLedger, consentOf } from '../../consent/ledger';
import { consentSummary } from '../../consent/summary';
import { findProfileId, type SubjectIdentifier, subjectIdentifierOf } from '../../identity/lookup';
import { scrubText } from '../../privacy/scrub-text';
import { reactToConsent } from '../../automation/react-to-consent';
import { sendError } from '../errors';
import { reloadRules } from '../../runtime/reload-rules';
import { createApiKey, listApiKeys } from '../../auth/api-keys';
import type { HttpDeps } from '../deps';
import { allowRoles, requireApiKey } from './auth';
import { erasureRoutes } from './erasure-routes';
import { subjectExportRoute } from './subject-export-route';

/** The admin API base. Later capabilities add their routes here, each with its roles. */
export async function adminRoutes(app: FastifyInstance, deps: HttpDeps): Promise<void> {
  requireApiKey(app, deps);

  app.get('/whoami', async (request) => request.apiKey);

  app.get('/keys', { preHandler: allowRoles(deps, 'admin') }, async () => ({ keys: await listApiKeys(deps.databases.db) }));

  app.post('/keys', { preHandler: allowRoles(deps, 'admin') }, async (request, reply) => {
    const body = CreateApiKeyBody.parse(request.body ?? {});
    const created = await createApiKey(deps.databases.db, body);
    request.log.info({ keyId: created.id, role: created.role, by: request.apiKey?.id }, 'API key created');
    return reply.code(201).send(created);
  });

  // Withdrawal through any channel takes effect from its commit (GDPR Art. 7(3), 21(3)).
  app.post('/subjects/consent', { preHandler: allowRoles(deps, 'privacy_officer') }, async (request, reply) => {
    const body = AdminConsentRequest.parse(request.body ?? {});
    const catalog = deps.rules.purposes;
    const unknown = [...body.withdraw, ...body.object].find((p) => !catalog.get(p));
    if (unknown) {
      return sendError(reply, 'VALIDATION_FAILED', `unknown purpose "${unknown}"; declared in rules/purposes.yaml: ${catalog.names.join(', ')}`, deps.metrics);
    }
    // The schema lets through exactly one identifier.
    const id = subjectIdentifierOf(body) as SubjectIdentifier;
    const profileId = await findProfileId(deps.databases.vaultDb, deps.keys, [id]);
    if (!profileId) return sendError(reply, 'NOT_FOUND', 'nobody with that identifier is known; nothing was recorded', deps.metrics);
    const now = new Date();
    const common = { profileId, occurredAt: now, sourceKind: 'admin' as const, method: 'admin' as const, sourceRef: `key ${request.apiKey?.id}: ${scrubText(body.reference)}` };
    await deps.databases.db.transaction().execute(async (trx) => {
      await appendLedger(trx, [
        ...body.withdraw.map((purpose) => ({ ...common, purpose, decision: 'withdrawn' as const })),
        ...body.object.map((purpose) => ({ ...common, purpose, decision: 'objected' as const })),
      ]);
      // Journeys running under the withdrawn consent end, and what they scheduled is cancelled.
      const reacted = await reactToConsent(trx, { compiled: deps.rules.compiled, catalog }, profileId);
      if (!reacted.ok) request.log.error({ error: reacted.error }, 'the rules failed after a withdrawal; it is recorded and the person marked for a re-check');
    });
    request.log.info({ by: request.apiKey?.id, withdraw: body.withdraw, object: body.object }, 'consent withdrawn by a privacy officer');
    const db = deps.databases.db;
    return { consent: consentSummary(catalog, await consentOf(db, profileId), await pendingPurposes(db, profileId)) };
  });

  subjectExportRoute(app, deps);

  // Re-reads the rule files in this process (each separate worker process reloads on SIGHUP).
  app.post('/rules/reload', { preHandler: allowRoles(deps, 'marketer', 'admin') }, async (request, reply) => {
    const result = await reloadRules({ rules: deps.rules, databases: deps.databases, log: deps.log, queues: deps.queues });
    if (!result.ok) {
      return reply.code(422).send({
        error: { code: 'RULES_INVALID', message: `the rule files have ${result.problems.length} problem(s); the running rule set ${result.version.slice(0, 8)} stays` },
        problems: result.problems,
      });
    }
    return { version: result.version, previous: result.previous, changed: result.changed };
  });

  app.get('/rules', { preHandler: allowRoles(deps, 'marketer', 'admin', 'operator') }, async () => {
    const set = deps.rules.ruleSet;
    return {
      version: set.version,
      segments: [...set.segments.values()].map((s) => ({ id: s.file.id, name: s.file.name, version: s.hash, path: s.path })),
      campaigns: [...set.campaigns.values()].map((c) => ({ id: c.file.id, name: c.file.name, purposes: c.file.purposes, version: c.hash, path: c.path })),
    };
  });

  app.get('/queues', { preHandler: allowRoles(deps, 'operator') }, async () => ({ queues: await deps.queues.counts() }));

  await erasureRoutes(app, deps);
}

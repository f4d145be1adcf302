import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { reloadRules } from '../../runtime/reload-rules';
import type { HttpDeps } from '../deps';
import { adminRoute } from './route-table';

/** Rule files: read by marketers and operators; reloaded by marketers, whose files they are. */
export function rulesRoutes(app: FastifyInstance, deps: HttpDeps): void {
  // Re-reads the rule files in this process (each separate worker process reloads on SIGHUP).
  adminRoute(
    app,
    'POST',
    '/rules/reload',
    { roles: ['marketer'], action: 'rules.reload', summary: 'Re-read the rule files; a broken set is refused and the running one stays' },
    async (_input, _request, reply) => {
      const result = await reloadRules({ rules: deps.rules, databases: deps.databases, log: deps.log, queues: deps.queues });
      if (!result.ok) {
        return reply.code(422).send({
          error: { code: 'RULES_INVALID', message: `the rule files have ${result.problems.length} problem(s); the running rule set ${result.version.slice(0, 8)} stays` },
          problems: result.problems,
        });
      }
      return { version: result.version, previous: result.previous, changed: result.changed };
    },
  );

  adminRoute(app, 'GET', '/rules', { roles: ['marketer', 'operator'], action: 'rules.read', summary: 'The running rule set: segments and campaigns' }, async () => {
    const set = deps.rules.ruleSet;
    return {
      version: set.version,
      segments: [...set.segments.values()].map((s) => ({ id: s.file.id, name: s.file.name, version: s.hash, path: s.path })),
      campaigns: [...set.campaigns.values()].map((c) => ({ id: c.file.id, name: c.file.name, purposes: c.file.purposes, version: c.hash, path: c.path })),
    };
  });

  // Aggregates only: a marketer sees how many, never who (least privilege, ASVS 5.0 V8.2).
  adminRoute(app, 'GET', '/segments', { roles: ['marketer'], action: 'segments.read', summary: 'Each segment with its member count' }, async () => {
    const counts = await sql<{ segment_id: string; members: string }>`
      select segment_id, count(*)::text as members from app.segment_state where member group by segment_id`.execute(deps.databases.db);
    const bySegment = new Map(counts.rows.map((r) => [r.segment_id, Number(r.members)]));
    return {
      segments: [...deps.rules.ruleSet.segments.values()].map((s) => ({ id: s.file.id, name: s.file.name, members: bySegment.get(s.file.id) ?? 0 })),
    };
  });
}

import { recordRuleSet } from '../automation/rule-set-versions';
import { syncBroadcastSchedulers } from '../automation/broadcasts';
import type { ReloadResult } from './rules';
import type { Services } from './services';

/**
 * Re-reads RULES_DIR for this process (SIGHUP, `POST /admin/v1/rules/reload`). A set with any
 * problem is refused whole and the running one stays; an accepted one is recorded by version, so
 * the decisions made under it can be traced to its files.
 */
export async function reloadRules(services: Pick<Services, 'rules' | 'databases' | 'log'> & { queues?: Services['queues'] }): Promise<ReloadResult> {
  const before = services.rules.ruleSet;
  const result = await services.rules.reload((ruleSet) => recordRuleSet(services.databases.db, ruleSet));
  if (!result.ok) {
    services.log.warn({ problems: result.problems.length, version: result.version }, `rules not reloaded; the running set stays: ${result.problems.join('; ')}`);
    return result;
  }
  // Members of a segment whose definition changed (or went) are re-evaluated by the next ticks, so a
  // broadcast does not reach the members of the old definition.
  const changed = [...before.segments.entries()].filter(([id, s]) => services.rules.ruleSet.segments.get(id)?.hash !== s.hash).map(([id]) => id);
  if (changed.length > 0) {
    await services.databases.db.updateTable('app.segment_state').set({ recheck_at: new Date() }).where('segment_id', 'in', changed).execute();
  }
  // Broadcast schedules follow the files.
  if (services.queues) await syncBroadcastSchedulers(services.queues, services.rules.compiled, services.log);
  services.log.info(
    { version: result.version, previous: result.previous, changed: result.changed, segmentsToRecheck: changed },
    result.changed ? 'rules reloaded' : 'rules re-read: unchanged',
  );
  return result;
}

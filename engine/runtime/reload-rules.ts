import { recordRuleSet } from '../automation/rule-set-versions';
import type { ReloadResult } from './rules';
import type { Services } from './services';

/**
 * Re-reads RULES_DIR for this process (SIGHUP, `POST /admin/v1/rules/reload`). A set with any
 * problem is refused whole and the running one stays; an accepted one is recorded by version, so
 * the decisions made under it can be traced to its files.
 */
export async function reloadRules(services: Pick<Services, 'rules' | 'databases' | 'log'>): Promise<ReloadResult> {
  const result = await services.rules.reload((ruleSet) => recordRuleSet(services.databases.db, ruleSet));
  if (!result.ok) {
    services.log.warn({ problems: result.problems.length, version: result.version }, `rules not reloaded; the running set stays: ${result.problems.join('; ')}`);
    return result;
  }
  services.log.info({ version: result.version, previous: result.previous, changed: result.changed }, result.changed ? 'rules reloaded' : 'rules re-read: unchanged');
  return result;
}

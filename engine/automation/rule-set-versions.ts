import { sql } from 'kysely';
import type { DbOrTrx } from '../db/types';
import type { RuleSet } from '../rules/rule-set';

/** Records the rule set a process runs, so every decision's version can be looked up later. */
export async function recordRuleSet(db: DbOrTrx, ruleSet: RuleSet): Promise<void> {
  const files: Record<string, string> = {};
  for (const s of ruleSet.segments.values()) files[s.path] = s.hash;
  for (const c of ruleSet.campaigns.values()) files[c.path] = c.hash;
  await db
    .insertInto('app.rule_sets')
    .values({ version: ruleSet.version, files: JSON.stringify(files) })
    .onConflict((oc) => oc.column('version').doUpdateSet({ last_loaded_at: sql`now()` }))
    .execute();
}

import path from 'node:path';
import type { Config } from '../config';
import type { PurposeCatalog } from '../consent/purposes';
import { AppError } from '../errors';
import type { PropertiesPolicy } from '../privacy/properties-policy';
import { type CompiledRuleSet, compileRuleSet } from '../rules/compile';
import { loadRuleSet } from '../rules/load';
import type { RuleSet } from '../rules/rule-set';

/** The marketer's files under RULES_DIR, read and checked as one set when a process starts. */
export interface Rules {
  readonly properties: PropertiesPolicy;
  readonly purposes: PurposeCatalog;
  readonly ruleSet: RuleSet;
  /** Compiled once: predicates indexed by trigger. */
  readonly compiled: CompiledRuleSet;
}

/** Reads the rule set; any problem refuses it whole, listing each as `file:line:column message`. */
export function loadRules(config: Config): Rules {
  const loaded = loadRuleSet(config.rulesDir);
  if (!loaded.ok) {
    const relative = path.relative(process.cwd(), config.rulesDir);
    const shown = relative.startsWith('..') || path.isAbsolute(relative) ? config.rulesDir : relative || '.';
    throw new AppError(
      'CONFIG_INVALID',
      `the rules in ${shown} have ${loaded.problems.length === 1 ? 'a problem' : `${loaded.problems.length} problems`} (\`consentflow rules check\` lists them): ${loaded.problems
        .map((p) => `${path.join(shown, p.file)}:${p.line}:${p.column} ${p.message}`)
        .join('; ')}`,
    );
  }
  const { ruleSet } = loaded;
  return { properties: ruleSet.properties, purposes: ruleSet.purposes, ruleSet, compiled: compileRuleSet(ruleSet) };
}

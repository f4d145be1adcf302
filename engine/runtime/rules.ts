import path from 'node:path';
import type { Config } from '../config';
import type { PurposeCatalog } from '../consent/purposes';
import type { TemplateSet } from '../email/templates';
import { AppError } from '../errors';
import type { PropertiesPolicy } from '../privacy/properties-policy';
import { type CompiledRuleSet, compileRuleSet } from '../rules/compile';
import { loadRuleSet } from '../rules/load';
import type { RuleSet } from '../rules/rule-set';

/** The marketer's files under RULES_DIR, read and checked as one set. */
export interface Rules {
  readonly properties: PropertiesPolicy;
  readonly purposes: PurposeCatalog;
  readonly ruleSet: RuleSet;
  /** Compiled once: predicates indexed by trigger. */
  readonly compiled: CompiledRuleSet;
}

export type ReloadResult =
  | { readonly ok: true; readonly version: string; readonly previous: string; readonly changed: boolean }
  | { readonly ok: false; readonly version: string; readonly problems: readonly string[] };

function read(config: Config): { ok: true; rules: Rules } | { ok: false; problems: string[] } {
  const loaded = loadRuleSet(config.rulesDir);
  if (!loaded.ok) {
    const relative = path.relative(process.cwd(), config.rulesDir);
    const shown = relative.startsWith('..') || path.isAbsolute(relative) ? config.rulesDir : relative || '.';
    return { ok: false, problems: loaded.problems.map((p) => `${path.join(shown, p.file)}:${p.line}:${p.column} ${p.message}`) };
  }
  const { ruleSet } = loaded;
  return { ok: true, rules: { properties: ruleSet.properties, purposes: ruleSet.purposes, ruleSet, compiled: compileRuleSet(ruleSet) } };
}

/**
 * The rule set a process runs, swapped whole on reload (SIGHUP, or the admin API): a set with any
 * problem is refused and the running one stays. Readers take `rules.compiled` (etc.) when they act,
 * so a batch started before a reload finishes on the set it began with only for what it already read.
 */
export class ReloadableRules implements Rules {
  private current: Rules;

  constructor(private readonly config: Config) {
    const first = read(config);
    if (!first.ok) {
      throw new AppError(
        'CONFIG_INVALID',
        `the rules in ${config.rulesDir} have ${first.problems.length === 1 ? 'a problem' : `${first.problems.length} problems`} (\`consentflow rules check\` lists them): ${first.problems.join('; ')}`,
      );
    }
    this.current = first.rules;
  }

  get properties(): PropertiesPolicy {
    return this.current.properties;
  }
  get purposes(): PurposeCatalog {
    return this.current.purposes;
  }
  get ruleSet(): RuleSet {
    return this.current.ruleSet;
  }
  get compiled(): CompiledRuleSet {
    return this.current.compiled;
  }
  get templates(): TemplateSet {
    return this.current.ruleSet.emails;
  }

  /** Reads the files again; `record` (the version in PostgreSQL) runs before the swap, so nothing runs unrecorded. */
  async reload(record: (ruleSet: RuleSet) => Promise<void> = async () => undefined): Promise<ReloadResult> {
    const previous = this.current.ruleSet.version;
    const next = read(this.config);
    if (!next.ok) return { ok: false, version: previous, problems: next.problems };
    await record(next.rules.ruleSet);
    this.current = next.rules;
    return { ok: true, version: next.rules.ruleSet.version, previous, changed: next.rules.ruleSet.version !== previous };
  }
}

/** Reads the rule set; any problem refuses it whole, listing each as `file:line:column message`. */
export function loadRules(config: Config): ReloadableRules {
  return new ReloadableRules(config);
}

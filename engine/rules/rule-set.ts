import type { CampaignFile } from '../../schemas/rules/campaign-file';
import type { SegmentFile } from '../../schemas/rules/segment-file';
import type { PurposeCatalog } from '../consent/purposes';
import type { TemplateSet } from '../email/templates';
import type { PropertiesPolicy } from '../privacy/properties-policy';

/**
 * A rule set as loaded from RULES_DIR and checked as a whole (engine/rules/load.ts): what the
 * compiler (engine/rules/compile.ts), the simulator and the events worker work from.
 */

export interface LoadedFile<T> {
  readonly file: T;
  /** Path relative to the rules directory, e.g. `campaigns/welcome.yaml`. */
  readonly path: string;
  /** SHA-256 (hex) of the file's bytes: the version decisions point at. */
  readonly hash: string;
}

export interface RuleSet {
  /** The directory it was read from (absolute). */
  readonly dir: string;
  readonly purposes: PurposeCatalog;
  readonly properties: PropertiesPolicy;
  /** Trait names profiles keep (properties.yaml traits.allow): the only ones conditions may use. */
  readonly traitNames: ReadonlySet<string>;
  readonly segments: ReadonlyMap<string, LoadedFile<SegmentFile>>;
  readonly campaigns: ReadonlyMap<string, LoadedFile<CampaignFile>>;
  /** Template name → path relative to the rules directory (`templates/welcome.html`). */
  readonly templates: ReadonlyMap<string, string>;
  /** The templates parsed and checked, ready to render (engine/email/templates.ts). */
  readonly emails: TemplateSet;
  /** SHA-256 (hex) over every file's path and hash, sorted: the version of the whole set. */
  readonly version: string;
}

/** One problem in the rule files, located in the YAML source. */
export interface RuleProblem {
  /** Relative to the rules directory, e.g. `campaigns/welcome.yaml`. */
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

export type RuleSetLoad = { readonly ok: true; readonly ruleSet: RuleSet } | { readonly ok: false; readonly problems: readonly RuleProblem[] };

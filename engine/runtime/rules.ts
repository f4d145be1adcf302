import path from 'node:path';
import type { Config } from '../config';
import { loadPurposeCatalog, type PurposeCatalog } from '../consent/purposes';
import { loadPropertiesPolicy, type PropertiesPolicy } from '../privacy/properties-policy';

/** The marketer's files under RULES_DIR, read and validated once when a process starts. */
export interface Rules {
  readonly properties: PropertiesPolicy;
  readonly purposes: PurposeCatalog;
}

export function loadRules(config: Config): Rules {
  return {
    properties: loadPropertiesPolicy(path.join(config.rulesDir, 'properties.yaml')),
    purposes: loadPurposeCatalog(path.join(config.rulesDir, 'purposes.yaml')),
  };
}

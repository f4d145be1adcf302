import path from 'node:path';
import { PropertiesFile } from '../../schemas/properties-file';
import type { Config } from '../config';
import { DEFAULT_PROPERTIES_FILE } from '../privacy/properties-policy';
import { loadRulesFile } from '../rules-files/load-rules-file';
import type { Rules } from '../runtime/rules';
import type { ProcessingRecordsInput } from './processing-records';

/**
 * The inputs of the records from the rules a process runs. PropertiesPolicy keeps its lists to
 * itself, so properties.yaml is read again from the directory the running rule set came from (a
 * file missing there means the built-in default, as when the rules were loaded).
 */
export function processingRecordsInput(config: Config, rules: Pick<Rules, 'purposes' | 'compiled'>, now = new Date()): ProcessingRecordsInput {
  const properties = loadRulesFile(path.join(rules.compiled.ruleSet.dir, 'properties.yaml'), PropertiesFile, DEFAULT_PROPERTIES_FILE);
  return { config, purposes: rules.purposes, compiled: rules.compiled, properties, now };
}

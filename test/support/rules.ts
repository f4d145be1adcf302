import fs from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { loadPurposeCatalog, type PurposeCatalog } from '../../engine/consent/purposes';
import { tempDir } from './config';

export const SHIPPED_RULES_DIR = path.resolve(__dirname, '../../rules');

/**
 * A RULES_DIR like the shipped one, but with `analytics` on legitimate interest: events are linked to
 * their profile unless the person objects. For the ingestion tests, which are about identity and
 * storage, not about consent (those run on the shipped files, where analytics needs consent).
 */
export function rulesLinkingByDefault(): string {
  const dir = tempDir('cf-rules');
  fs.copyFileSync(path.join(SHIPPED_RULES_DIR, 'properties.yaml'), path.join(dir, 'properties.yaml'));
  const purposes = parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'purposes.yaml'), 'utf8')) as {
    purposes: Record<string, { legal_basis: string }>;
  };
  (purposes.purposes.analytics as { legal_basis: string }).legal_basis = 'legitimate_interest';
  fs.writeFileSync(path.join(dir, 'purposes.yaml'), stringify(purposes));
  return dir;
}

export function shippedCatalog(): PurposeCatalog {
  return loadPurposeCatalog(path.join(SHIPPED_RULES_DIR, 'purposes.yaml'));
}

export function catalogLinkingByDefault(): PurposeCatalog {
  return loadPurposeCatalog(path.join(rulesLinkingByDefault(), 'purposes.yaml'));
}

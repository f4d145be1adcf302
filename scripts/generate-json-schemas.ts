/**
 * Writes the JSON Schemas of the rule files from their zod schemas, so editors (via the
 * `# yaml-language-server: $schema=` line) autocomplete and flag errors. Run `npm run schemas` after
 * changing a schema; a test fails while the committed files are stale.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PropertiesFile } from '../schemas/properties-file';
import { PurposesFile } from '../schemas/purposes-file';
import { CampaignFile } from '../schemas/rules/campaign-file';
import { SegmentFile } from '../schemas/rules/segment-file';
import { SubjectExport } from '../schemas/subject-export';

export const JSON_SCHEMAS: Record<string, z.ZodType> = {
  'properties.schema.json': PropertiesFile,
  'purposes.schema.json': PurposesFile,
  // Conditions and steps nest (z.lazy): toJSONSchema writes them once under $defs and refers to them.
  'segment.schema.json': SegmentFile,
  'campaign.schema.json': CampaignFile,
  // Not a rule file: the document `subject export` writes (GDPR Art. 15, 20), for whoever receives one.
  'subject-export.schema.json': SubjectExport,
};

export function renderJsonSchema(schema: z.ZodType): string {
  return `${JSON.stringify(z.toJSONSchema(schema, { io: 'input' }), null, 2)}\n`;
}

if (require.main === module) {
  // Run from the sources (`npm run schemas` uses tsx), so the repository's schemas/ is one level up.
  const target = path.resolve(__dirname, '..', 'schemas', 'json');
  fs.mkdirSync(target, { recursive: true });
  for (const [file, schema] of Object.entries(JSON_SCHEMAS)) {
    fs.writeFileSync(path.join(target, file), renderJsonSchema(schema));
    process.stdout.write(`wrote ${path.relative(process.cwd(), path.join(target, file))}\n`);
  }
}

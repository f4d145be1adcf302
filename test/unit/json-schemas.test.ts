import fs from 'node:fs';
import path from 'node:path';
import { JSON_SCHEMAS, renderJsonSchema } from '../../scripts/generate-json-schemas';

describe('committed JSON Schemas', () => {
  it.each(Object.keys(JSON_SCHEMAS))('%s matches its zod schema (run `npm run schemas` if not)', (file) => {
    const committed = fs.readFileSync(path.resolve(__dirname, '../../schemas/json', file), 'utf8');
    expect(committed).toBe(renderJsonSchema(JSON_SCHEMAS[file] as never));
  });
});

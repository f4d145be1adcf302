import type { PropertiesPolicy } from '../privacy/properties-policy';
import { scrubText } from '../privacy/scrub-text';
import type { CsvRecord } from './csv';
import { checkPerson, IDENTIFIER_FIELDS, isKnownTrait, type Person } from './person';

/**
 * The rows of an import file: a header naming the columns (`email`, `userId`, and traits that
 * rules/properties.yaml keeps), then one person per row. Pure: no I/O.
 */

/** More columns than any person's traits need; a wider file is almost surely not a contact list. */
export const MAX_COLUMNS = 100;

export type HeaderCheck = { readonly ok: true; readonly columns: readonly string[] } | { readonly ok: false; readonly message: string };

export type RowCheck =
  | { readonly ok: true; readonly line: number; readonly person: Person }
  | { readonly ok: false; readonly line: number; readonly column?: string; readonly message: string };

// A column name is the file's text, not ours: shown scrubbed and cut, never a whole address.
const shown = (name: string) => JSON.stringify(scrubText(name).slice(0, 60));

/**
 * Unknown columns refuse the whole file rather than being dropped: a marketer who exports a
 * column expects it kept, and data minimisation (GDPR Art. 5(1)(c)) says it is kept only once
 * declared in rules/properties.yaml. Nothing is written before the header passes.
 */
export function checkHeader(policy: PropertiesPolicy, record: CsvRecord | undefined): HeaderCheck {
  if (!record) return { ok: false, message: 'the file is empty: expected a header row naming the columns (email, userId, traits)' };
  if (record.error) return { ok: false, message: `line ${record.line} (the header): ${record.error}` };
  const columns = record.fields.map((f) => f.trim());
  if (columns.length > MAX_COLUMNS) return { ok: false, message: `line ${record.line} (the header): ${columns.length} columns; at most ${MAX_COLUMNS} are allowed` };
  const seen = new Set<string>();
  for (const [index, name] of columns.entries()) {
    if (name.length === 0) return { ok: false, message: `line ${record.line} (the header): column ${index + 1} has no name` };
    if (seen.has(name)) return { ok: false, message: `line ${record.line} (the header): column ${shown(name)} appears twice` };
    seen.add(name);
  }
  const unknown = columns.filter((name) => !(IDENTIFIER_FIELDS as readonly string[]).includes(name) && !isKnownTrait(policy, name));
  if (unknown.length > 0) {
    return {
      ok: false,
      message:
        `line ${record.line} (the header): ${unknown.length === 1 ? 'column' : 'columns'} ${unknown.map(shown).join(', ')} ` +
        `${unknown.length === 1 ? 'is' : 'are'} neither an identifier (email, userId) nor a trait rules/properties.yaml keeps ` +
        '(traits.allow, traits.pii): remove the column, or declare the trait there first (data minimisation, GDPR Art. 5(1)(c)); nothing was imported',
    };
  }
  if (!columns.some((name) => (IDENTIFIER_FIELDS as readonly string[]).includes(name))) {
    return { ok: false, message: `line ${record.line} (the header): expected a column email or userId, naming who each row is` };
  }
  return { ok: true, columns };
}

/** One row: the same field count as the header, readable text, then the person rules (person.ts). */
export function checkRecord(policy: PropertiesPolicy, columns: readonly string[], record: CsvRecord): RowCheck {
  const line = record.line;
  if (record.error) return { ok: false, line, message: record.error };
  if (record.fields.length !== columns.length) {
    return { ok: false, line, message: `expected ${columns.length} fields as in the header, found ${record.fields.length}` };
  }
  let email: string | undefined;
  let userId: string | undefined;
  const traits: Record<string, string> = {};
  for (const [index, column] of columns.entries()) {
    const raw = record.fields[index] as string;
    // U+FFFD is what a byte sequence that is not UTF-8 decodes to (a file saved as Windows-1252).
    if (raw.includes('\ufffd')) return { ok: false, line, column, message: 'not valid UTF-8 text (save the file as CSV UTF-8)' };
    const value = raw.trim();
    if (value.length === 0) continue;
    if (column === 'email') email = value;
    else if (column === 'userId') userId = value;
    else traits[column] = value;
  }
  const checked = checkPerson(policy, { email, userId, traits });
  if (!checked.ok) {
    const column = checked.field.startsWith('traits.') ? checked.field.slice('traits.'.length) : checked.field;
    return { ok: false, line, column, message: checked.message };
  }
  return { ok: true, line, person: checked.person };
}

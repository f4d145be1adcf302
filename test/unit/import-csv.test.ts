import fc from 'fast-check';
import { CsvParser, type CsvRecord, MAX_RECORD_CHARS, parseCsv } from '../../engine/import/csv';

const fieldsOf = (records: CsvRecord[]) => records.map((r) => r.fields);

/** Feeds the text in pieces cut at the given offsets, as a file stream delivers it. */
function parseInChunks(text: string, cuts: readonly number[]): CsvRecord[] {
  const parser = new CsvParser();
  const out: CsvRecord[] = [];
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    out.push(...parser.push(text.slice(from, cut)));
    from = cut;
  }
  out.push(...parser.push(text.slice(from)), ...parser.end());
  return out;
}

/** RFC 4180 §2 rules 5-7: quote a field that holds a comma, a quote or a line break; double its quotes. */
const quote = (field: string) => (/[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field);

describe('CSV reader (RFC 4180)', () => {
  it('reads plain records, CRLF or LF, with or without a line break at the end', () => {
    expect(fieldsOf(parseCsv('email,plan\r\na@example.com,pro\r\n'))).toEqual([['email', 'plan'], ['a@example.com', 'pro']]);
    expect(fieldsOf(parseCsv('email,plan\na@example.com,pro'))).toEqual([['email', 'plan'], ['a@example.com', 'pro']]);
    expect(fieldsOf(parseCsv('a,b\rc,d\r'))).toEqual([['a', 'b'], ['c', 'd']]);
    expect(fieldsOf(parseCsv('a,,\n,,'))).toEqual([['a', '', ''], ['', '', '']]);
  });

  it('reads quoted fields holding commas, doubled quotes and line breaks', () => {
    const records = parseCsv('name,note\r\n"Nowak, Anna","said ""hi"""\r\n"two\r\nlines","x\ny"\r\n""\r\n');
    expect(fieldsOf(records)).toEqual([['name', 'note'], ['Nowak, Anna', 'said "hi"'], ['two\r\nlines', 'x\ny'], ['']]);
    expect(records.every((r) => r.error === undefined)).toBe(true);
  });

  it('numbers each record by the physical line it starts on, past fields spanning lines and blank lines', () => {
    const records = parseCsv('h\n"a\nb\nc"\n\n\nd\r\n"e\r\nf"\r\ng');
    expect(records.map((r) => [r.line, r.fields[0]])).toEqual([[1, 'h'], [2, 'a\nb\nc'], [7, 'd'], [8, 'e\r\nf'], [10, 'g']]);
  });

  it('drops a UTF-8 byte order mark and skips blank lines', () => {
    expect(fieldsOf(parseCsv('\ufeffemail\n\nx@example.com\n\n'))).toEqual([['email'], ['x@example.com']]);
  });

  it('reports a malformed record with its line and goes on with the next', () => {
    const records = parseCsv('a,b\nx"y,1\n"z"w,2\n"ok",3\n"open,4\nnext,5');
    expect(records.map((r) => [r.line, r.error ?? null])).toEqual([
      [1, null],
      [2, expect.stringContaining('a quote inside the unquoted field 1')],
      [3, expect.stringContaining('text after the closing quote of field 1')],
      [4, null],
      // A quote never closed runs to the end of the input: it is the last record, and says so.
      [5, 'a quoted field that starts on line 5 is never closed'],
    ]);
    expect(records[3]?.fields).toEqual(['ok', '3']);
  });

  it('refuses an oversized record without keeping it, and reads the next one', () => {
    const records = parseCsv(`a\n"${'x'.repeat(MAX_RECORD_CHARS + 10)}"\nb\n`);
    expect(records.map((r) => [r.line, r.error ?? null])).toEqual([[1, null], [2, `the record is longer than ${MAX_RECORD_CHARS} characters`], [3, null]]);
    expect(records[1]?.fields.join('').length).toBeLessThanOrEqual(MAX_RECORD_CHARS);
    // Separators count too: a line of commas does not become a million empty fields.
    const commas = parseCsv(`a\n${','.repeat(MAX_RECORD_CHARS + 10)}\nb`);
    expect(commas.map((r) => [r.line, r.error ?? null])).toEqual([[1, null], [2, `the record is longer than ${MAX_RECORD_CHARS} characters`], [3, null]]);
    expect(commas[1]?.fields.length).toBeLessThanOrEqual(MAX_RECORD_CHARS + 1);
  });

  it('reads back what an RFC 4180 writer wrote, however the stream cuts the text', () => {
    const field = fc.string({ unit: fc.constantFrom('a', 'ż', ',', '"', '\r', '\n', ' ', '\r\n') });
    const table = fc.array(fc.array(field, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(table, fc.array(fc.nat(), { maxLength: 6 }), fc.constantFrom('\r\n', '\n'), (rows, cuts, eol) => {
        // A row of two empty fields is the line ",": never blank, so it is a record.
        const text = rows.map((r) => r.map(quote).join(',')).join(eol) + eol;
        const records = parseInChunks(text, cuts.map((c) => c % (text.length + 1)));
        expect(records.map((r) => r.error)).toEqual(rows.map(() => undefined));
        expect(fieldsOf(records)).toEqual(rows);
      }),
      { numRuns: 300 },
    );
  });
});

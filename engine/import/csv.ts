/**
 * CSV as RFC 4180 defines it, read incrementally: fields separated by commas, records by line
 * breaks; a field in double quotes may hold commas, line breaks and doubled quotes (`""`). Also
 * accepted, as every spreadsheet writes them: LF or CR alone as a line break, a UTF-8 byte order
 * mark, no line break after the last record. Blank lines are not records.
 *
 * A record carries the line it starts on (the header is line 1), counted in physical lines, so a
 * quoted field spanning lines does not shift the numbers of the records after it. A malformed
 * record (a stray quote, text after a closing quote, a quote never closed, an oversized record) is
 * returned with `error` and parsing goes on at the next record: one bad row never hides the rest.
 */

export interface CsvRecord {
  readonly line: number;
  readonly fields: readonly string[];
  /** Why the record cannot be read as fields; its fields are then incomplete. */
  readonly error?: string;
}

/** Longer records are refused without being kept in memory (a quote never closed would otherwise swallow the file). */
export const MAX_RECORD_CHARS = 64 * 1024;

type State = 'fieldStart' | 'unquoted' | 'quoted' | 'quoteInQuoted' | 'afterQuoted';

export class CsvParser {
  private state: State = 'fieldStart';
  private fields: string[] = [];
  private field = '';
  private recordChars = 0;
  private error: string | undefined;
  /** The physical line being read, and the one the current record started on. */
  private line = 1;
  private recordLine = 1;
  private pendingCr = false;
  private started = false;
  private first = true;

  /** Feeds text; returns the records it completed. */
  push(chunk: string): CsvRecord[] {
    const out: CsvRecord[] = [];
    let text = chunk;
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    for (let i = 0; i < text.length; i++) {
      const c = text[i] as string;
      // A CR already ended a line; the LF right after it belongs to the same line break (kept as
      // content inside a quoted field, but not counted as another line).
      if (this.pendingCr) {
        this.pendingCr = false;
        if (c === '\n') {
          if (this.state === 'quoted') this.append(c);
          continue;
        }
      }
      this.step(c, out);
    }
    return out;
  }

  /** Ends the input; returns the last record, if any, and names a quote left open. */
  end(): CsvRecord[] {
    const out: CsvRecord[] = [];
    if (this.state === 'quoted') this.fail(`a quoted field that starts on line ${this.recordLine} is never closed`);
    if (this.started) this.finishRecord(out);
    return out;
  }

  private step(c: string, out: CsvRecord[]): void {
    const isBreak = c === '\n' || c === '\r';
    switch (this.state) {
      case 'quoted':
        if (c === '"') this.state = 'quoteInQuoted';
        else this.append(c);
        if (isBreak) this.newLine(c);
        return;
      case 'quoteInQuoted':
        if (c === '"') {
          this.append('"');
          this.state = 'quoted';
          return;
        }
        this.state = 'afterQuoted';
        break;
      default:
        break;
    }
    if (c === ',') {
      this.started = true;
      // Separators count towards the record's length too: a line of commas is no smaller a record.
      if (++this.recordChars > MAX_RECORD_CHARS) this.fail(`the record is longer than ${MAX_RECORD_CHARS} characters`);
      if (this.error === undefined) this.fields.push(this.field);
      this.field = '';
      this.state = 'fieldStart';
      return;
    }
    if (isBreak) {
      if (this.started || this.field.length > 0 || this.fields.length > 0) {
        this.finishRecord(out);
      }
      this.newLine(c);
      this.recordLine = this.line;
      return;
    }
    this.started = true;
    if (this.state === 'fieldStart') {
      if (c === '"') {
        this.state = 'quoted';
        return;
      }
      this.state = 'unquoted';
    }
    if (this.state === 'afterQuoted') {
      this.fail(`text after the closing quote of field ${this.fields.length + 1} (RFC 4180: a quoted field ends at its closing quote)`);
      return;
    }
    if (c === '"') {
      this.fail(`a quote inside the unquoted field ${this.fields.length + 1} (quote the whole field and double the quote: "a ""b"" c")`);
      return;
    }
    this.append(c);
  }

  private newLine(c: string): void {
    this.line++;
    if (c === '\r') this.pendingCr = true;
  }

  private append(c: string): void {
    if (++this.recordChars > MAX_RECORD_CHARS) {
      this.fail(`the record is longer than ${MAX_RECORD_CHARS} characters`);
      return;
    }
    if (this.error === undefined) this.field += c;
  }

  private fail(message: string): void {
    this.error ??= message;
  }

  private finishRecord(out: CsvRecord[]): void {
    this.fields.push(this.field);
    out.push(this.error === undefined ? { line: this.recordLine, fields: this.fields } : { line: this.recordLine, fields: this.fields, error: this.error });
    this.fields = [];
    this.field = '';
    this.recordChars = 0;
    this.error = undefined;
    this.started = false;
    this.state = 'fieldStart';
  }
}

/** Parses a whole text (tests, small inputs). */
export function parseCsv(text: string): CsvRecord[] {
  const parser = new CsvParser();
  return [...parser.push(text), ...parser.end()];
}

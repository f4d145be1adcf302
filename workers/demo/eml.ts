import fs from 'node:fs';
import path from 'node:path';

/**
 * Reads the `.eml` files the engine writes under DATA_DIR/outbox when no SMTP_URL is set
 * (engine/email/mailer.ts): enough of RFC 5322 and MIME to show a demo's emails, their
 * List-Unsubscribe header and the links in their text. Not a general mail parser.
 */
export interface OutboxMessage {
  readonly file: string;
  readonly subject: string;
  readonly to: string;
  header(name: string): string | undefined;
  readonly text: string;
}

interface Part {
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** Headers apart from the body (RFC 5322 §2.1), unfolded (§2.2.3), encoded words decoded. */
function parsePart(raw: string): Part {
  const split = /\r?\n\r?\n/.exec(raw);
  const head = split ? raw.slice(0, split.index) : raw;
  const body = split ? raw.slice(split.index + split[0].length) : '';
  const headers = new Map<string, string>();
  for (const line of head.replace(/\r?\n(?=[ \t])/g, '').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, decodeEncodedWords(line.slice(colon + 1).trim()));
  }
  return { headers, body };
}

/** RFC 2047 encoded words, as nodemailer writes non-ASCII headers. */
function decodeEncodedWords(value: string): string {
  return value
    .replace(/(\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, _charset: string, encoding: string, data: string) =>
      encoding.toUpperCase() === 'B' ? Buffer.from(data, 'base64').toString('utf8') : decodeQuotedPrintable(data.replace(/_/g, ' ')),
    );
}

/** RFC 2045 §6.7: a soft line break (`=` at a line end) joins lines; `=XX` is one octet. */
function decodeQuotedPrintable(text: string): string {
  const joined = text.replace(/[ \t]*=\r?\n/g, '');
  const bytes: Buffer[] = [];
  let literal = '';
  for (let i = 0; i < joined.length; i++) {
    const hex = joined.slice(i + 1, i + 3);
    if (joined[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Buffer.from(literal, 'utf8'), Buffer.from([parseInt(hex, 16)]));
      literal = '';
      i += 2;
    } else {
      literal += joined[i];
    }
  }
  bytes.push(Buffer.from(literal, 'utf8'));
  return Buffer.concat(bytes).toString('utf8');
}

function decodeBody(part: Part): string {
  const encoding = (part.headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  if (encoding === 'base64') return Buffer.from(part.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return encoding === 'quoted-printable' ? decodeQuotedPrintable(part.body) : part.body;
}

/** The first text/plain part, depth first through multiparts (RFC 2046 §5.1). */
function findText(part: Part): string | undefined {
  const type = part.headers.get('content-type') ?? 'text/plain';
  if (/^multipart\//i.test(type)) {
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (!boundary) return undefined;
    const delimiter = `--${boundary}`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const sections = part.body.split(new RegExp(`\\r?\\n?${delimiter}(?:--)?[ \\t]*\\r?\\n?`));
    for (const section of sections.slice(1, -1)) {
      const text = findText(parsePart(section));
      if (text !== undefined) return text;
    }
    return undefined;
  }
  return /^text\/plain/i.test(type) ? decodeBody(part) : undefined;
}

export function parseEml(file: string, raw: string): OutboxMessage {
  const root = parsePart(raw);
  return {
    file,
    subject: root.headers.get('subject') ?? '',
    to: root.headers.get('to') ?? '',
    header: (name) => root.headers.get(name.toLowerCase()),
    text: (findText(root) ?? '').replace(/\r\n/g, '\n'),
  };
}

/** The messages in the outbox, oldest first (file names start with the time they were written). */
export function readOutbox(dir: string): OutboxMessage[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith('.eml'))
    .sort()
    .map((name) => parseEml(path.join(dir, name), fs.readFileSync(path.join(dir, name), 'utf8')));
}

/** The one URL in `<…>` of List-Unsubscribe that is http(s) (RFC 2369; RFC 8058 posts to it). */
export function unsubscribeUrl(message: OutboxMessage): string | undefined {
  const header = message.header('list-unsubscribe');
  return header ? /<(https?:\/\/[^>]+)>/.exec(header)?.[1] : undefined;
}

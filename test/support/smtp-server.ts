import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerError, type SMTPServerOptions } from 'smtp-server';
import { waitFor } from './wait';

/**
 * A real SMTP server on a free loopback port, standing in for the remote relay (DESIGN: a remote
 * SMTP relay is replaced by a real local SMTP server, not a mock). It keeps what it receives in
 * memory and parses just enough MIME for tests to read headers and the text part.
 */
export interface ReceivedMessage {
  /** MAIL FROM of the envelope. */
  readonly from: string;
  /** RCPT TO addresses of the envelope. */
  readonly to: string[];
  /** The message as transmitted (CRLF line ends, transfer-encoded bodies). */
  readonly raw: string;
  /** The Subject header, encoded words decoded. */
  readonly subject: string;
  /** The first header of that name (case-insensitive), unfolded and with encoded words decoded. */
  header(name: string): string | undefined;
  /** The text/plain body, transfer encoding (quoted-printable, base64) undone, LF line ends. */
  readonly text: string;
}

export interface TestSmtpServer {
  /** `smtp://127.0.0.1:<port>` */
  readonly url: string;
  readonly messages: ReceivedMessage[];
  waitForMessages(n: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /** From now on refuse (or, with undefined, accept) every message: a relay going down and up. */
  setRejection(rejectWith: TestSmtpServerOptions['rejectWith']): void;
  /** How many messages were refused so far. */
  readonly refused: () => number;
  close(): Promise<void>;
}

export interface TestSmtpServerOptions {
  /**
   * Refuse every message with this reply: at RCPT TO (default, as a relay refusing a mailbox does) or
   * after DATA (as one refusing the content does).
   */
  readonly rejectWith?: { readonly code: number; readonly message: string; readonly at?: 'rcpt' | 'data' };
}

/**
 * Plain SMTP options every local SMTP server of the tests and benches shares (this one,
 * test/faults/harness/smtp-sink.ts, scripts/bench/smtp-sink.ts): no TLS, no authentication, no
 * reverse lookup, no log, and a short close timeout (a client that is never closed must not hold a
 * test's teardown for the default 30 s).
 */
export const TEST_SMTP_OPTIONS: Readonly<SMTPServerOptions> = {
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  disableReverseLookup: true,
  logger: false,
  closeTimeout: 1_000,
};

/** Listens on a free loopback port; returns the server's `smtp://127.0.0.1:<port>` URL. */
export async function listenOnLoopback(server: SMTPServer): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.server.address() as AddressInfo;
  return `smtp://127.0.0.1:${port}`;
}

export async function startTestSmtpServer(options: TestSmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ReceivedMessage[] = [];
  let reject = options.rejectWith;
  let refused = 0;
  const rejection = (): SMTPServerError => {
    refused++;
    return Object.assign(new Error(reject?.message ?? ''), { responseCode: reject?.code });
  };

  const server = new SMTPServer({
    ...TEST_SMTP_OPTIONS,
    onRcptTo(_address, _session, callback) {
      callback(reject && (reject.at ?? 'rcpt') === 'rcpt' ? rejection() : null);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', callback);
      stream.on('end', () => {
        if (reject) return callback(rejection());
        const mailFrom = session.envelope.mailFrom;
        messages.push(
          parseMessage(
            Buffer.concat(chunks).toString('utf8'),
            mailFrom ? mailFrom.address : '',
            session.envelope.rcptTo.map((rcpt) => rcpt.address),
          ),
        );
        callback(null);
      });
    },
  });

  const url = await listenOnLoopback(server);

  return {
    url,
    messages,
    waitForMessages: (n, timeoutMs = 10_000) =>
      waitFor(() => messages.length >= n && messages.slice(0, n), { timeoutMs, what: `${n} message(s) at the test SMTP server` }),
    setRejection: (rejectWith) => {
      reject = rejectWith;
    },
    refused: () => refused,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Part {
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

/** Splits headers from body (RFC 5322 §2.1) and unfolds the headers (§2.2.3). */
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

/** RFC 2047 encoded words (`=?utf-8?Q?...?=`, `=?utf-8?B?...?=`), as nodemailer writes non-ASCII headers. */
function decodeEncodedWords(value: string): string {
  return value
    .replace(/(\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, _charset: string, encoding: string, data: string) =>
      encoding.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : decodeQuotedPrintable(data.replace(/_/g, ' ')),
    );
}

/** RFC 2045 §6.7: soft line breaks (`=` at a line end) join lines; `=XX` is one octet. */
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
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(part.body);
  return part.body;
}

/** The first text/plain part, searching nested multiparts depth first (RFC 2046 §5.1). */
function findText(part: Part): string | undefined {
  const type = part.headers.get('content-type') ?? 'text/plain';
  if (/^multipart\//i.test(type)) {
    const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
    if (!boundary) return undefined;
    const delimiter = `--${boundary}`;
    const sections = part.body.split(new RegExp(`\\r?\\n?${escapeRegExp(delimiter)}(?:--)?[ \\t]*\\r?\\n?`));
    // The preamble before the first delimiter and the epilogue after the last are not parts.
    for (const section of sections.slice(1, -1)) {
      const text = findText(parsePart(section));
      if (text !== undefined) return text;
    }
    return undefined;
  }
  return /^text\/plain/i.test(type) ? decodeBody(part) : undefined;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function parseMessage(raw: string, from: string, to: string[]): ReceivedMessage {
  const root = parsePart(raw);
  return {
    from,
    to,
    raw,
    subject: root.headers.get('subject') ?? '',
    header: (name) => root.headers.get(name.toLowerCase()),
    text: (findText(root) ?? '').replace(/\r\n/g, '\n'),
  };
}

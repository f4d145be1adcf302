/**
 * The SMTP sink of `npm run bench:email`: a real smtp-server on a free loopback port that accepts
 * every message, keeps nothing but when each one arrived and its Message-ID, and counts. Unlike
 * test/support/smtp-server.ts it parses no MIME, so it costs as little per message as a server can.
 */
import { SMTPServer } from 'smtp-server';
import { listenOnLoopback, TEST_SMTP_OPTIONS } from '../../test/support/smtp-server';

export interface Receipt {
  /** performance.timeOrigin + performance.now() at the end of DATA, in ms since the epoch. */
  readonly at: number;
  /** The Message-ID header without angle brackets, or '' when the message had none. */
  readonly messageId: string;
  readonly bytes: number;
}

export interface SmtpSink {
  readonly url: string;
  /** Everything received since the last reset, in order of arrival. */
  readonly receipts: Receipt[];
  /** Forgets what was received: the next scenario counts from zero. */
  reset(): void;
  close(): Promise<void>;
}

const MESSAGE_ID = /^message-id:[ \t]*<([^>\r\n]+)>/im;

export async function startSmtpSink(): Promise<SmtpSink> {
  let receipts: Receipt[] = [];
  const server = new SMTPServer({
    ...TEST_SMTP_OPTIONS,
    // The engine sends one message per connection use; nodemailer's pool reuses connections.
    maxClients: 1_000,
    onData(stream, _session, callback) {
      let head = '';
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        // The headers come first; 8 KiB of them is more than any message here has.
        if (head.length < 8_192) head += chunk.toString('latin1', 0, Math.min(chunk.length, 8_192));
      });
      stream.on('error', callback);
      stream.on('end', () => {
        const at = performance.timeOrigin + performance.now();
        receipts.push({ at, messageId: MESSAGE_ID.exec(head.split(/\r?\n\r?\n/, 1)[0] ?? '')?.[1] ?? '', bytes });
        callback(null);
      });
    },
  });
  const url = await listenOnLoopback(server);
  return {
    url,
    get receipts() {
      return receipts;
    },
    reset() {
      receipts = [];
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

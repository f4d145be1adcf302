import { SMTPServer } from 'smtp-server';
import { listenOnLoopback, TEST_SMTP_OPTIONS } from '../../support/smtp-server';

/**
 * A real SMTP server (the smtp-server package) on a free loopback port that keeps, of each message,
 * only what the fault scenarios count: recipients, Message-ID, campaign, and when it arrived.
 * (test/support/smtp-server.ts parses whole messages; thousands of them are not needed here. The
 * two share their options and their listening: listenOnLoopback, TEST_SMTP_OPTIONS.)
 */
export interface SunkMessage {
  readonly to: string[];
  readonly messageId: string;
  readonly campaign: string;
  /** Date.now() when the DATA was accepted. */
  readonly at: number;
  /** Date.now() of the transaction's MAIL FROM: when the client started this message. */
  readonly startedAt: number;
}

export interface SmtpSink {
  readonly url: string;
  readonly messages: SunkMessage[];
  /**
   * From now on, keep each message's DATA unanswered (the client waits for the reply) until
   * `hold(false)`; a message whose client goes away before the reply is not delivered.
   */
  hold(on: boolean): void;
  /** Messages whose DATA is waiting for its reply now. */
  held(): number;
  /**
   * From now on, answer every MAIL FROM with `421 4.3.2` (service not available, closing the
   * channel: RFC 5321 §3.8) until `refuse421(false)`. Counted in `refused421`.
   */
  refuse421(on: boolean): void;
  /** Transactions answered 421 so far. */
  readonly refused421: () => number;
  /** RCPT TO of these addresses (lowercase) is answered `550 5.1.1` (no such mailbox, RFC 3463). */
  bounce(addresses: Iterable<string>): void;
  /** RCPT TO attempts per address answered 550 5.1.1. */
  readonly bounced: Map<string, number>;
  /**
   * The next `n` messages are read whole (DATA and its final dot) and then their connection is cut
   * before any reply: the client cannot know whether the relay took them. Such messages are kept in
   * `cut` (as a relay that did take them would have delivered them), not in `messages`.
   */
  cutAfterData(n: number): void;
  readonly cut: SunkMessage[];
  close(): Promise<void>;
}

function header(head: string, name: string): string {
  const match = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return (match?.[1] ?? '').replace(/\r?\n[ \t]+/g, ' ').trim();
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: SunkMessage[] = [];
  let holding = false;
  const waiting = new Set<() => void>();
  const held = new Map<string, () => void>();
  const closed = new Set<string>();
  const mailFromAt = new Map<string, number>();
  let refusing = false;
  let refused = 0;
  const bouncing = new Set<string>();
  const bounced = new Map<string, number>();
  let cutting = 0;
  const cut: SunkMessage[] = [];
  const server: SMTPServer = new SMTPServer({
    ...TEST_SMTP_OPTIONS,
    size: 10 * 1024 * 1024,
    onMailFrom(_address, session, callback) {
      if (refusing) {
        refused++;
        // smtp-server closes the connection after a 421, as RFC 5321 §3.8 has the server do.
        return callback(Object.assign(new Error('4.3.2 Service not available, closing transmission channel'), { responseCode: 421 }));
      }
      mailFromAt.set(session.id, Date.now());
      callback();
    },
    onRcptTo(address, _session, callback) {
      const to = address.address.toLowerCase();
      if (bouncing.has(to)) {
        bounced.set(to, (bounced.get(to) ?? 0) + 1);
        return callback(Object.assign(new Error(`5.1.1 <${to}>: Recipient address rejected: User unknown in virtual mailbox table`), { responseCode: 550 }));
      }
      callback();
    },
    onClose(session) {
      closed.add(session.id);
      const release = held.get(session.id);
      if (release) waiting.delete(release);
      held.delete(session.id);
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', callback);
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const split = /\r?\n\r?\n/.exec(raw);
        const head = split ? raw.slice(0, split.index) : raw;
        const to = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
        const startedAt = mailFromAt.get(session.id) ?? Date.now();
        const message = () => ({ to, messageId: header(head, 'Message-ID'), campaign: header(head, 'X-Consentflow-Campaign'), at: Date.now(), startedAt });
        if (cutting > 0) {
          // The whole message is here; the connection goes before the reply (a relay that crashed,
          // or a network cut, after it queued the message).
          cutting--;
          cut.push(message());
          for (const c of server.connections as unknown as Set<{ id: string; _socket?: { destroy(): void } }>) if (c.id === session.id) c._socket?.destroy();
          return;
        }
        const accept = () => {
          messages.push(message());
          callback(null);
        };
        if (!holding) return accept();
        // Delivered only if the client is still there to hear the reply.
        const release = () => {
          waiting.delete(release);
          if (!closed.has(session.id)) accept();
        };
        waiting.add(release);
        held.set(session.id, release);
      });
    },
  });
  // A client killed mid-session resets its connection: that is the scenario, not an error of the test.
  server.on('error', () => undefined);
  const url = await listenOnLoopback(server);
  return {
    url,
    messages,
    hold(on) {
      holding = on;
      if (!on) for (const release of [...waiting]) release();
    },
    held: () => waiting.size,
    refuse421(on) {
      refusing = on;
    },
    refused421: () => refused,
    bounce(addresses) {
      for (const a of addresses) bouncing.add(a.toLowerCase());
    },
    bounced,
    cutAfterData(n) {
      cutting = n;
    },
    cut,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Messages per key, and how many keys came more than once. */
export function duplicatesBy(messages: readonly SunkMessage[], key: (m: SunkMessage) => string): { distinct: number; duplicated: number; extra: number } {
  const counts = new Map<string, number>();
  for (const m of messages) counts.set(key(m), (counts.get(key(m)) ?? 0) + 1);
  let duplicated = 0;
  let extra = 0;
  for (const n of counts.values()) {
    if (n > 1) {
      duplicated++;
      extra += n - 1;
    }
  }
  return { distinct: counts.size, duplicated, extra };
}

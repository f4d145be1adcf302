import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import DKIM from 'nodemailer/lib/dkim';
import { isTransientError } from 'nodemailer/lib/errors';
import { assign, parseConnectionUrl } from 'nodemailer/lib/shared';
import SMTPConnection, { type SMTPConnectionAuth, type SMTPConnectionOptions } from 'nodemailer/lib/smtp-connection';
import wellKnown from 'nodemailer/lib/well-known';
import { parseAddress } from './address';

/**
 * A pool of SMTP connections for messages composed beforehand (mime.ts): nodemailer's own
 * SMTPConnection, one message at a time on each connection, up to `maxConnections` of them.
 *
 * Why not nodemailer's pooled transport: for each message it builds a message object, a MIME tree
 * (even around bytes already made) and its streams, and hands a connection back to the pool through
 * a timer and an event. That took about 0.2 ms of the email worker's CPU a message, and, worse, each
 * hop waits for a busy event loop: the relay's connections, not the worker, became the limit. Here a
 * connection that finishes a message takes the next one at once.
 *
 * What the transport did that matters is kept: connection options from the URL (and `?service=`) as
 * it reads them, the same connection, TLS and authentication code, a connection replaced after 100
 * messages and closed after 4 minutes idle, a message refused by the relay (its envelope or content)
 * leaving the connection usable after RSET, a message whose reused connection turned out closed
 * before a byte of it went sent again on another (up to 5 times), and DKIM signing.
 */

export interface SmtpPoolOptions {
  /** `smtp://` or `smtps://`, with credentials and nodemailer's query options. */
  readonly url: string;
  readonly maxConnections: number;
  readonly connectionTimeout: number;
  readonly greetingTimeout: number;
  readonly dnsTimeout: number;
  readonly socketTimeout: number;
  readonly dkim?: { readonly domainName: string; readonly keySelector: string; readonly privateKey: string; readonly headerFieldNames: string } | undefined;
}

export interface SmtpEnvelope {
  readonly from: string;
  readonly to: readonly string[];
}

export interface SmtpPool {
  /** Resolves with the relay's final reply; rejects with SMTPConnection's error (code, responseCode, command). */
  send(envelope: SmtpEnvelope, raw: Buffer): Promise<{ readonly response: string }>;
  /** Closes every connection; messages still waiting for one fail. */
  close(): void;
}

// nodemailer's pool defaults.
const MAX_MESSAGES = 100;
const IDLE_MS = 4 * 60_000;
const MAX_REQUEUES = 5;

interface Waiting {
  readonly envelope: SmtpEnvelope;
  readonly raw: Buffer;
  readonly resolve: (reply: { response: string }) => void;
  readonly reject: (err: unknown) => void;
  requeues: number;
}

interface Lane {
  readonly connection: SMTPConnection;
  ready: boolean;
  busy: boolean;
  closed: boolean;
  messages: number;
  idle?: NodeJS.Timeout;
}

export function createSmtpPool(options: SmtpPoolOptions): SmtpPool {
  const { url, maxConnections, dkim: dkimOptions, ...timeouts } = options;
  const fromUrl = parseConnectionUrl(url);
  const service = typeof fromUrl.service === 'string' ? wellKnown(fromUrl.service) : false;
  const connectionOptions = assign(false, timeouts, fromUrl, service || undefined) as SMTPConnectionOptions & { auth?: { user?: string; pass?: string; method?: string } };
  const credentials = connectionOptions.auth;
  const auth: SMTPConnectionAuth | undefined =
    credentials && (credentials.user || credentials.pass)
      ? { type: 'LOGIN', user: credentials.user, credentials: { user: credentials.user ?? '', pass: credentials.pass ?? '' }, method: credentials.method?.trim().toUpperCase() || false }
      : undefined;
  const dkim = dkimOptions ? new DKIM(dkimOptions) : undefined;
  const waiting: Waiting[] = [];
  const lanes = new Set<Lane>();
  let closed = false;

  const retire = (lane: Lane, polite: boolean): void => {
    if (lane.closed) return;
    lane.closed = true;
    clearTimeout(lane.idle);
    lanes.delete(lane);
    if (polite) lane.connection.quit();
    else lane.connection.close();
    // A place is free: a message still waiting may open a connection of its own.
    setImmediate(pump);
  };

  const send = (lane: Lane, item: Waiting): void => {
    lane.busy = true;
    clearTimeout(lane.idle);
    const reused = lane.messages > 0;
    // A stream, so that a failure can tell whether any of the message was read (sent) yet.
    const message = Readable.from([item.raw], { objectMode: false });
    lane.connection.send({ from: item.envelope.from, to: [...item.envelope.to] }, message, (err, info) => {
      // Still busy until released: an RSET may be under way first.
      lane.messages++;
      if (!err) {
        item.resolve({ response: info.response });
        release(lane);
        return;
      }
      if (reused && !message.readableDidRead && isTransientError(err)) {
        // The relay closed a connection that had sat idle, before this message started: another connection takes it.
        retire(lane, false);
        if (!closed && item.requeues++ < MAX_REQUEUES) waiting.unshift(item);
        else item.reject(err);
        return;
      }
      item.reject(err);
      if ((err.code === 'EENVELOPE' || err.code === 'EMESSAGE') && err.responseCode !== 421 && !lane.closed) {
        // The relay refused this message, not the session: RSET, and the connection carries on.
        lane.connection.reset((resetErr) => (resetErr ? retire(lane, false) : release(lane)));
        return;
      }
      retire(lane, false);
    });
  };

  const release = (lane: Lane): void => {
    lane.busy = false;
    if (lane.closed) return;
    if (lane.messages >= MAX_MESSAGES) return retire(lane, true);
    const next = waiting.shift();
    if (next) return send(lane, next);
    lane.idle = setTimeout(() => retire(lane, true), IDLE_MS);
    lane.idle.unref();
  };

  const open = (first: Waiting): void => {
    const lane: Lane = { connection: new SMTPConnection(connectionOptions), ready: false, busy: false, closed: false, messages: 0 };
    lanes.add(lane);
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      first.reject(err);
      retire(lane, false);
    };
    lane.connection.on('error', (err: Error) => {
      // A message under way learns of it from its own callback; an idle connection just ends.
      if (!lane.ready) fail(err);
    });
    lane.connection.once('end', () => {
      if (!lane.ready) fail(Object.assign(new Error('Connection closed before it was ready'), { code: 'ECONNECTION' }));
      else retire(lane, false);
    });
    const ready = () => {
      if (settled || lane.closed) return;
      settled = true;
      lane.ready = true;
      send(lane, first);
    };
    lane.connection.connect(() => {
      if (settled || lane.closed) return;
      if (auth && lane.connection.allowsAuth) lane.connection.login(auth, (err) => (err ? fail(err) : ready()));
      else ready();
    });
  };

  function pump(): void {
    if (closed) return;
    for (const lane of lanes) {
      if (waiting.length === 0) return;
      if (lane.ready && !lane.busy && !lane.closed) send(lane, waiting.shift() as Waiting);
    }
    while (waiting.length > 0 && lanes.size < maxConnections) open(waiting.shift() as Waiting);
  }

  return {
    async send(envelope, raw) {
      if (closed) throw Object.assign(new Error('the SMTP pool is closed'), { code: 'ECLOSED' });
      // MAIL FROM and RCPT TO are command lines: an address that is not one plain addr-spec (a CR or
      // LF above all) would write a command of its own. mime.ts builds envelopes from checked
      // addresses; this holds for any other caller too (address.ts).
      const exact = (address: string, single = false) => {
        const parsed = parseAddress(address, { allowSingleLabelDomain: single });
        return parsed.ok && parsed.address === address;
      };
      if (!exact(envelope.from, true) || envelope.to.length === 0 || !envelope.to.every((to) => exact(to))) {
        throw Object.assign(new Error('the envelope holds an address that is not valid'), { code: 'EENVELOPE' });
      }
      // DKIM (RFC 6376) over the bytes as they go out; the signature header goes first.
      const bytes = dkim ? await buffer(dkim.sign(raw)) : raw;
      return new Promise((resolve, reject) => {
        waiting.push({ envelope, raw: bytes, resolve, reject, requeues: 0 });
        pump();
      });
    },
    close() {
      closed = true;
      for (const item of waiting.splice(0)) item.reject(Object.assign(new Error('the SMTP pool is closed'), { code: 'ECLOSED' }));
      for (const lane of [...lanes]) retire(lane, !lane.busy);
    },
  };
}

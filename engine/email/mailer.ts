import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createTransport, type NodemailerError } from 'nodemailer';
import { isPermanentResponseCode } from 'nodemailer/lib/errors';
import type { Logger } from '../log/logger';
import { scrubText } from '../privacy/scrub-text';
import { type ComposedMessage, createMimeComposer, MimeError, type MimeComposer } from './mime';
import { createSmtpPool } from './smtp-pool';

/** A rendered message, ready to go. */
export interface OutgoingEmail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Stable id, so a retry of the same message is recognizable downstream (Message-ID header). */
  readonly messageId: string;
}

/** `messageId` is the Message-ID header the message went out with, angle brackets included. */
export type Delivery =
  | { readonly via: 'smtp'; readonly messageId: string; readonly response: string }
  | { readonly via: 'outbox'; readonly messageId: string; readonly path: string };

/**
 * A message that was not delivered. `permanent`: sending the same message again would fail the same
 * way (RFC 5321 §4.2.1: a 5yz reply is a permanent negative completion, a 4yz one transient; so is a
 * lost connection or a timeout). 503 (bad sequence of commands) counts as transient, as nodemailer
 * marks it: it speaks of the session's state, not of the message.
 *
 * The message holds no address: nodemailer's errors (and some relays' replies) name the recipient,
 * and this error is logged and stored, so its text is scrubbed and the original is not kept as cause.
 */
export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  readonly permanent: boolean;
  readonly responseCode?: number;
  /** nodemailer's or the system's error code (EENVELOPE, EMESSAGE, ESOCKET, ETIMEDOUT, ENOSPC…). */
  readonly code?: string;
  /** The SMTP command the relay answered with an error. */
  readonly command?: string;

  constructor(message: string, details: { permanent: boolean; responseCode?: number; code?: string; command?: string }) {
    super(scrubText(message));
    this.permanent = details.permanent;
    if (details.responseCode !== undefined) this.responseCode = details.responseCode;
    if (details.code !== undefined) this.code = details.code;
    if (details.command !== undefined) this.command = details.command;
  }
}

export interface Mailer {
  send(email: OutgoingEmail): Promise<Delivery>;
  close(): Promise<void>;
}

export interface MailerOptions {
  /** Unset: no relay, each message becomes an `.eml` file under `outboxDir`. */
  readonly smtpUrl: string | undefined;
  readonly from: string;
  readonly outboxDir: string;
  readonly log: Logger;
  /** Connections of the SMTP pool (default 5). */
  readonly poolSize?: number;
  /** DKIM signing (RFC 6376) of every message, both unsubscribe headers among the signed ones. */
  readonly dkim?: { readonly domain: string; readonly selector: string; readonly privateKeyFile: string } | undefined;
}

// nodemailer's default signed headers, plus List-Unsubscribe-Post: Gmail and Yahoo ask that both
// unsubscribe headers be covered by the DKIM signature (RFC 8058 §4).
const DKIM_HEADERS =
  'From:Sender:Reply-To:Subject:Date:Message-ID:To:Cc:MIME-Version:Content-Type:Content-Transfer-Encoding:Content-ID:' +
  'Content-Description:Resent-Date:Resent-From:Resent-Sender:Resent-To:Resent-Cc:Resent-Message-ID:In-Reply-To:References:' +
  'List-Id:List-Help:List-Unsubscribe:List-Unsubscribe-Post:List-Subscribe:List-Post:List-Owner:List-Archive';

function dkimOptions(options: MailerOptions): { dkim?: { domainName: string; keySelector: string; privateKey: string; headerFieldNames: string } } {
  if (!options.dkim) return {};
  let privateKey: string;
  try {
    privateKey = readFileSync(options.dkim.privateKeyFile, 'utf8');
  } catch (err) {
    throw new Error(`DKIM_PRIVATE_KEY_FILE: cannot read ${options.dkim.privateKeyFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return { dkim: { domainName: options.dkim.domain, keySelector: options.dkim.selector, privateKey, headerFieldNames: DKIM_HEADERS } };
}

// Errors nodemailer raises before any reply, about the message itself (no recipient, an invalid
// address, an empty message): the same message fails the same way every time.
const PERMANENT_WITHOUT_REPLY = new Set(['EENVELOPE', 'EMESSAGE', 'EMAXRECIPIENTS', 'ECONFIG']);

export function toDeliveryError(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err;
  const e = (err && typeof err === 'object' ? err : { message: String(err) }) as Partial<NodemailerError>;
  const responseCode = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  const code = typeof e.code === 'string' ? e.code : undefined;
  const permanent =
    responseCode !== undefined
      ? (e.permanent ?? isPermanentResponseCode(responseCode))
      : code !== undefined && PERMANENT_WITHOUT_REPLY.has(code);
  const details: { permanent: boolean; responseCode?: number; code?: string; command?: string } = { permanent };
  if (responseCode !== undefined) details.responseCode = responseCode;
  if (code !== undefined) details.code = code;
  if (typeof e.command === 'string') details.command = e.command;
  return new DeliveryError(`email not delivered: ${e.message ?? 'unknown error'}`, details);
}

/** RFC 5322 §3.6.4: `<id-left@id-right>`; a bare id gets this engine as its right-hand side. */
export function messageIdHeader(messageId: string): string {
  const id = messageId.replace(/^<(.*)>$/, '$1');
  // The id goes into a header and a file name: printable ASCII only (no space, no CR or LF, no other
  // control character: header injection), no brackets.
  if (!/^[!-;=?-~]{1,200}$/.test(id)) {
    throw new DeliveryError('email not delivered: messageId must be 1-200 printable ASCII characters without spaces or angle brackets', {
      permanent: true,
      code: 'EMESSAGEID',
    });
  }
  return id.includes('@') ? `<${id}>` : `<${id}@consentflow>`;
}

/**
 * The message's bytes and envelope (mime.ts): composed once, synchronously, and handed to the
 * transport as they are. A message that cannot be composed fails permanently, before any relay sees it.
 */
function compose(composer: MimeComposer, email: OutgoingEmail): ComposedMessage & { readonly messageId: string } {
  const messageId = messageIdHeader(email.messageId);
  try {
    const { envelope, raw } = composer.compose({ to: email.to, subject: email.subject, text: email.text, html: email.html, messageId, headers: email.headers });
    return { envelope, raw, messageId };
  } catch (err) {
    if (err instanceof MimeError) throw new DeliveryError(`email not delivered: ${err.message}`, { permanent: true, code: 'EMESSAGE' });
    throw err;
  }
}

/**
 * Delivers rendered messages: through the SMTP relay of `smtpUrl`, or, without one, into `outboxDir`
 * as `.eml` files (development, tests, a deployment that has no relay yet).
 */
export function createMailer(options: MailerOptions): Mailer {
  const delivered = (delivery: Delivery): Delivery => {
    // Never the recipient: logs hold no address (DESIGN invariant 1).
    options.log.info({ messageId: delivery.messageId, via: delivery.via }, 'email delivered');
    return delivery;
  };
  return options.smtpUrl === undefined ? outboxMailer(options, delivered) : smtpMailer(options.smtpUrl, options, delivered);
}

function smtpMailer(smtpUrl: string, options: MailerOptions, delivered: (d: Delivery) => Delivery): Mailer {
  const pool = createSmtpPool({
    url: smtpUrl,
    maxConnections: options.poolSize ?? 5,
    ...dkimOptions(options),
    // nodemailer's defaults (2 min to connect, 10 min of silence) would hold a worker's job far
    // past any sensible retry; a relay that answers at all answers within seconds.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    dnsTimeout: 10_000,
    socketTimeout: 30_000,
  });
  const composer = createMimeComposer(options.from);
  const inFlight = new Set<Promise<unknown>>();
  let closed = false;

  return {
    async send(email) {
      if (closed) throw new DeliveryError('email not delivered: the mailer is closed', { permanent: false, code: 'ECLOSED' });
      const { envelope, raw, messageId } = compose(composer, email);
      const sending = pool.send(envelope, raw);
      inFlight.add(sending);
      try {
        const reply = await sending;
        return delivered({ via: 'smtp', messageId, response: reply.response });
      } catch (err) {
        throw toDeliveryError(err);
      } finally {
        inFlight.delete(sending);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // Let deliveries under way finish: a message cut off mid-DATA would be sent again by its retry.
      await Promise.allSettled([...inFlight]);
      pool.close();
    },
  };
}

function outboxMailer(options: MailerOptions, delivered: (d: Delivery) => Delivery): Mailer {
  // The exact bytes an SMTP relay would get (mime.ts, DKIM-signed here when configured); CRLF line ends, as RFC 5322 §2.1 asks.
  const transport = createTransport({ streamTransport: true, buffer: true, newline: 'windows', ...dkimOptions(options) });
  const composer = createMimeComposer(options.from);
  let closed = false;

  return {
    async send(email) {
      if (closed) throw new DeliveryError('email not delivered: the mailer is closed', { permanent: false, code: 'ECLOSED' });
      const messageId = messageIdHeader(email.messageId);
      try {
        const info = await transport.sendMail(compose(composer, email));
        const bytes = Buffer.isBuffer(info.message) ? info.message : Buffer.from(String(info.message));
        const name = `${new Date().toISOString().replace(/:/g, '-')}-${email.messageId.replace(/[^A-Za-z0-9._-]/g, '_')}.eml`;
        const file = await writeAtomically(options.outboxDir, name, bytes);
        return delivered({ via: 'outbox', messageId, path: file });
      } catch (err) {
        throw toDeliveryError(err);
      }
    },
    async close() {
      closed = true;
    },
  };
}

/**
 * Writes the file under a temporary name and renames it into place, so whoever watches the outbox
 * never reads half a message. Owner-only modes: the messages hold addresses.
 */
async function writeAtomically(dir: string, name: string, bytes: Buffer): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const target = path.join(dir, name);
  const temp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  } catch (err) {
    await fs.rm(temp, { force: true });
    throw err;
  }
  return target;
}

import { randomBytes } from 'node:crypto';
import { foldLines } from 'nodemailer/lib/mime-funcs';
import MimeNode from 'nodemailer/lib/mime-node';
import { HEADER_FORBIDDEN, parseAddress, parseMailbox } from './address';

/**
 * The bytes of one message (RFC 5322, MIME: RFC 2045-2047), built in one synchronous pass.
 *
 * Why not nodemailer's MailComposer: it builds every message through a tree of streams (a
 * pipeline, transforms and abort signals per part), which cost the email worker about 0.5 ms of
 * CPU a message, as much as the rest of a send together, and it hands the socket a chunk per part
 * (a system call each). The shape of what the engine sends is fixed, so it is built here as one
 * Buffer: headers with nodemailer's own encoders (RFC 2047 encoded words, addresses with punycode
 * domains), bodies in quoted-printable (RFC 2045 §6.7). The mailer hands the bytes as they are to
 * its SMTP pool (smtp-pool.ts, which DKIM-signs them when configured) or to its outbox.
 *
 *   the caller's headers, From, To, Subject, Message-ID, Date, MIME-Version,
 *   Content-Type: multipart/alternative (text/plain, then text/html) or text/plain alone,
 *   each part `charset=utf-8`, quoted-printable; every line ends with CRLF (RFC 5322 §2.1).
 *
 * Header injection (nodemailer CVE-2021-23400 class, ASVS 5.0 V4.2.4) is stopped here for every
 * caller, whatever was checked before: the recipient and the sender must pass the one address rule
 * (address.ts), and the envelope is built from the checked addresses, not parsed again from text; a
 * caller's header may not be one that carries addresses and may hold no control character (CR, LF…)
 * at all: refused, never repaired. The Subject is text a template produced: a line break in it
 * becomes a space and any other control character an RFC 2047 encoded word, as nodemailer encodes it,
 * so it can never start a header line of its own.
 */

export interface MimeMessage {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string | undefined;
  /** The Message-ID header's value, angle brackets included (mailer.ts messageIdHeader). */
  readonly messageId: string;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly date?: Date;
}

export interface ComposedMessage {
  /** SMTP envelope (RFC 5321 MAIL FROM / RCPT TO), as nodemailer derives it from From and To. */
  readonly envelope: { readonly from: string; readonly to: string[] };
  readonly raw: Buffer;
}

/**
 * Headers the composer writes itself, and those that carry addresses (a caller's Reply-To or
 * Resent-To would add recipients or redirect answers without the address rule): refused from a caller.
 */
const OWN_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'message-id', 'date', 'mime-version', 'content-type', 'content-transfer-encoding',
  'sender', 'reply-to', 'return-path', 'disposition-notification-to', 'return-receipt-to',
]);
const isOwnHeader = (key: string) => OWN_HEADERS.has(key.toLowerCase()) || /^resent-/i.test(key);

const CRLF = '\r\n';

// One node to encode with: a MimeNode draws random bytes for its boundary when it is made, a
// quarter of the cost of a message if one were made for each header.
const encoder = new MimeNode(false, { baseBoundary: 'unused' });

// Headers nodemailer treats as structured (addresses, ids, dates, MIME parameters): always its encoder.
const STRUCTURED = new Set(['from', 'sender', 'to', 'cc', 'bcc', 'reply-to', 'message-id', 'in-reply-to', 'content-id', 'references', 'date', 'otp-token', 'content-type', 'content-disposition']);

/**
 * `Key: value`, the value encoded as nodemailer encodes that header (RFC 2047 where needed), folded at
 * 76. An unstructured value of printable ASCII with no quote and nothing like an encoded word is one
 * nodemailer leaves as it is: it is taken as it is without asking (most subjects and every list header).
 */
function headerLine(key: string, value: string): string {
  const plain = !STRUCTURED.has(key.toLowerCase()) && /^[\t\x20\x21\x23-\x7e]*$/.test(value) && !value.includes('=?');
  return foldLines(`${key}: ${plain ? value : encoder.encodeHeaderValue(key, value)}`, 76);
}

/** The SMTP envelope's addresses of an address header, as nodemailer parses them (punycode for the domain). */
function envelopeOf(key: 'From' | 'To', value: string): { from: string | false; to: string[] } {
  const node = new MimeNode(false, { baseBoundary: 'unused' });
  node.setHeader(key, value);
  const { from, to } = node.getEnvelope();
  return { from, to };
}

// Bytes written as they are (RFC 2045 §6.7 rule 2): printable ASCII but "=". Space and tab too, but
// not at the end of a line (rule 3).
const LITERAL = new Uint8Array(256);
for (let b = 33; b <= 126; b++) LITERAL[b] = b === 0x3d ? 0 : 1;
const HEX = Buffer.from('0123456789ABCDEF', 'latin1');
// Compose is synchronous: one scratch buffer serves every message, grown when a body needs more.
let scratch = Buffer.allocUnsafe(32 * 1024);

/**
 * Quoted-printable (RFC 2045 §6.7) in one pass: every line break CRLF, lines of at most 76
 * characters with the soft break's "=", no encoded character (nor UTF-8 sequence) split by a soft break.
 */
export function quotedPrintable(content: string): string {
  const input = Buffer.from(content, 'utf8');
  const need = input.length * 4 + 8;
  if (scratch.length < need) scratch = Buffer.allocUnsafe(need);
  const out = scratch;
  let pos = 0;
  let column = 0;
  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    if (b === 0x0d || b === 0x0a) {
      if (b === 0x0d && input[i + 1] === 0x0a) i++;
      out[pos++] = 0x0d;
      out[pos++] = 0x0a;
      column = 0;
      continue;
    }
    const next = input[i + 1];
    const literal = LITERAL[b] === 1 || ((b === 0x20 || b === 0x09) && next !== undefined && next !== 0x0d && next !== 0x0a);
    // A UTF-8 sequence's bytes stay on one line: its lead byte reserves room for all of them.
    const startsCharacter = b < 0x80 || b >= 0xc0;
    const bytes = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    const width = literal ? 1 : 3 * bytes;
    if (startsCharacter && column + width > 75) {
      out[pos++] = 0x3d;
      out[pos++] = 0x0d;
      out[pos++] = 0x0a;
      column = 0;
    }
    if (literal) {
      out[pos++] = b;
      column++;
    } else {
      out[pos++] = 0x3d;
      out[pos++] = HEX[b >> 4] as number;
      out[pos++] = HEX[b & 15] as number;
      column += 3;
    }
  }
  return out.toString('latin1', 0, pos);
}

function part(type: 'plain' | 'html', content: string): string {
  return `Content-Type: text/${type}; charset=utf-8${CRLF}Content-Transfer-Encoding: quoted-printable${CRLF}${CRLF}${quotedPrintable(content)}`;
}

/**
 * The From header line and the envelope sender are the same for every message of a mailer: parsed
 * (and, for an international domain, punycoded) once, by nodemailer, as it would for each message.
 */
export interface MimeComposer {
  compose(message: MimeMessage): ComposedMessage;
}

export function createMimeComposer(from: string): MimeComposer {
  // The operator's sender (EMAIL_FROM, checked when the configuration is read); a one-label domain
  // (no-reply@localhost, the development default) is allowed for it alone.
  const sender = parseMailbox(from, { allowSingleLabelDomain: true });
  if (!sender.ok) throw new MimeError(`the sender (EMAIL_FROM) is not valid: ${sender.reason}`);
  // A name with specials (only a quoted one may hold them) is quoted again, so it reads as one name.
  const name = sender.name === undefined ? undefined : /^[\p{L}\p{M}\p{N} !#$%&'*+/=?^_`{|}~.-]*$/u.test(sender.name) ? sender.name : `"${sender.name}"`;
  const fromValue = name === undefined ? sender.address : `${name} <${sender.address}>`;
  const fromLine = headerLine('From', fromValue);
  const envelopeFrom = sender.address;
  // nodemailer's encoder must read the header as this one address, or the header and the envelope differ.
  if (envelopeOf('From', fromValue).from !== envelopeFrom) throw new MimeError('the sender (EMAIL_FROM) is not valid: it does not read as one address');
  // Unguessable by a template's author, so no line of a part can close the multipart early (RFC 2046 §5.1.1).
  const boundaryBase = `--_cf-${randomBytes(12).toString('hex')}`;
  let sequence = 0;

  return {
    compose(message) {
      // One recipient, a bare address by the rule: no list, group, display name or comment to parse.
      const recipient = parseAddress(message.to);
      if (!recipient.ok) throw new MimeError(`a message goes to exactly one valid address: ${recipient.reason}`);
      const to = [recipient.address];
      const lines: string[] = [];
      for (const [key, value] of Object.entries(message.headers ?? {})) {
        if (!/^[!-9;-~]+$/.test(key)) throw new MimeError('a header name is printable ASCII without a colon (RFC 5322 §2.2)');
        if (isOwnHeader(key)) throw new MimeError(`the header ${key} is the composer's own, or carries addresses`);
        if (typeof value !== 'string' || HEADER_FORBIDDEN.test(value)) {
          throw new MimeError(`the header ${key} holds a line break or another control character`);
        }
        lines.push(headerLine(key, value));
      }
      if (typeof message.subject !== 'string') throw new MimeError('the subject is not text');
      lines.push(
        fromLine,
        headerLine('To', recipient.address),
        headerLine('Subject', message.subject),
        headerLine('Message-ID', message.messageId),
        `Date: ${(message.date ?? new Date()).toUTCString().replace(/GMT/, '+0000')}`,
        'MIME-Version: 1.0',
      );
      let body: string;
      if (message.html === undefined) {
        lines.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable');
        body = quotedPrintable(message.text);
      } else {
        sequence = (sequence + 1) % Number.MAX_SAFE_INTEGER;
        const boundary = `${boundaryBase}-${sequence.toString(36)}`;
        lines.push(`Content-Type: multipart/alternative;${CRLF} boundary="${boundary}"`);
        body = `--${boundary}${CRLF}${part('plain', message.text)}${CRLF}--${boundary}${CRLF}${part('html', message.html)}${CRLF}--${boundary}--`;
      }
      return { envelope: { from: envelopeFrom, to }, raw: Buffer.from(`${lines.join(CRLF)}${CRLF}${CRLF}${body}${CRLF}`, 'utf8') };
    },
  };
}

/** A message that cannot be composed as asked: the same input fails the same way every time. */
export class MimeError extends Error {
  override readonly name = 'MimeError';
}

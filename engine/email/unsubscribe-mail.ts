/**
 * The mailto form of List-Unsubscribe (RFC 2369 §3.2): `<mailto:ADDRESS?subject=unsubscribe%20TOKEN>`,
 * and the reading of what arrives there. Mail clients that offer an "unsubscribe" button without
 * doing the RFC 8058 POST send a message to that address with the given Subject (RFC 6068 §2); the
 * mail server pipes it to `consentflow unsubscribe-mail`, which finds the token in the Subject.
 *
 * The token goes in the Subject rather than in a `+tag` of the address: a signed token is about 100
 * characters, more than the 64 octets RFC 5321 §4.5.3.1.1 allows a local part.
 */

/** The mailto URI of one send's unsubscribe token (the same token as the one-click link's). */
export function unsubscribeMailto(address: string, token: string): string {
  // The token is base64url and '.', all unreserved in a URI (RFC 3986 §2.3): only the space is encoded.
  return `mailto:${address}?subject=unsubscribe%20${token}`;
}

/** What is read of a message: its header section is all that matters, and bodies can be large. */
export const MAX_HEADER_BYTES = 256 * 1024;

/** A `<payload>.<mac>` token as engine/consent/links.ts writes them (base64url; a 32-byte MAC). */
const TOKEN = /[A-Za-z0-9_-]{16,4000}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;

export type SubjectTokens = { readonly subject: false } | { readonly subject: true; readonly tokens: readonly string[] };

/**
 * The token-shaped strings of the message's Subject, in order; the caller verifies them. The header
 * section ends at the first empty line (RFC 5322 §2.1); folded lines are unfolded (§2.2.3) and
 * RFC 2047 encoded words decoded, since clients may encode or fold a long Subject.
 */
export function subjectTokens(message: Buffer | string): SubjectTokens {
  const text = (typeof message === 'string' ? Buffer.from(message, 'utf8') : message).subarray(0, MAX_HEADER_BYTES).toString('latin1');
  const end = /\r?\n\r?\n/.exec(text);
  const header = (end ? text.slice(0, end.index) : text).replace(/\r?\n(?=[ \t])/g, '');
  const line = header.split(/\r?\n/).find((l) => /^subject[ \t]*:/i.test(l));
  if (line === undefined) return { subject: false };
  // A client that copied the URI's `%20` without decoding it still names the token.
  const subject = decodeEncodedWords(line.slice(line.indexOf(':') + 1)).replace(/%20/g, ' ');
  return { subject: true, tokens: [...subject.matchAll(TOKEN)].map((m) => m[0]) };
}

/** RFC 2047 §6.2: whitespace between adjacent encoded words is dropped, so a token split across two stays whole. */
function decodeEncodedWords(value: string): string {
  return value
    .replace(/(\?=)[ \t]+(?==\?)/g, '$1')
    .replace(/=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=/g, (_m, charset: string, encoding: string, data: string) => {
      const bytes =
        encoding.toUpperCase() === 'B'
          ? Buffer.from(data, 'base64')
          : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_h, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
      try {
        // RFC 2231 §5 allows a language after '*': `utf-8*en`.
        return new TextDecoder(charset.split('*')[0]).decode(bytes);
      } catch {
        return bytes.toString('latin1');
      }
    });
}

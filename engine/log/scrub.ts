/**
 * Last line of defence for invariant 1 (no PII in logs): every serialized log line passes through
 * here before it is written, so an address that slipped into a message, an error text or a URL is
 * masked even where no redaction path names it. Path redaction (see logger.ts) handles known fields;
 * this handles everything else.
 */
const EMAIL = /[A-Za-z0-9._%+-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
// A full IPv4 address is personal data (CJEU C-582/14, Breyer); keep only the /24 network. Loopback
// and the unspecified address are the server's own and stay readable.
const IPV4 = /\b(\d{1,3})(\.\d{1,3}\.\d{1,3})\.(\d{1,3})\b/g;
const keepNetwork = (full: string, first: string, middle: string) =>
  first === '127' || full === '0.0.0.0' ? full : `${first}${middle}.0`;

export function scrubLine(line: string): string {
  if (!line.includes('@') && !line.includes('%40') && !/\d\.\d/.test(line)) return line;
  return line.replace(EMAIL, '[email]').replace(IPV4, keepNetwork);
}

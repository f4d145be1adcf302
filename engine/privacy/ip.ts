import ipaddr from 'ipaddr.js';

/**
 * A full IP address is personal data (CJEU C-582/14, Breyer); GDPR Art. 5(1)(c) lets us keep only
 * what the purpose needs, and coarse geography needs the network, not the host. IPv4 keeps its /24
 * and IPv6 its /48 (the usual size of one site's allocation, RFC 6177), as analytics tools do.
 */
// Dotted-quad decimal IPv4 without leading zeros: what ipaddr.js's isValidFourPartDecimal accepts
// (each part also at most 255, checked below). Matched first because it is what nearly every request
// carries, and ipaddr.js's validation costs the pixel's one thread more than the rest of this file.
const DOTTED_QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

export function truncateIp(ip: string | undefined): string | undefined {
  const text = ip?.trim();
  if (!text) return undefined;
  const quad = DOTTED_QUAD.exec(text);
  if (quad && Number(quad[1]) <= 255 && Number(quad[2]) <= 255 && Number(quad[3]) <= 255 && Number(quad[4]) <= 255) return `${quad[1]}.${quad[2]}.${quad[3]}.0`;
  // Only dotted-quad IPv4: ipaddr.js also accepts legacy forms (`127.1`, `0x7f.1`) no client sends.
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return truncateV4(ipaddr.IPv4.parse(text));
  if (!ipaddr.IPv6.isValid(text)) return undefined;
  const v6 = ipaddr.IPv6.parse(text);
  // `::ffff:203.0.113.77` is an IPv4 client seen through a dual-stack socket (RFC 4291 §2.5.5.2).
  if (v6.isIPv4MappedAddress()) return truncateV4(v6.toIPv4Address());
  const [a = 0, b = 0, c = 0] = v6.parts;
  return new ipaddr.IPv6([a, b, c, 0, 0, 0, 0, 0]).toRFC5952String();
}

function truncateV4(ip: ipaddr.IPv4): string {
  const [a = 0, b = 0, c = 0] = ip.octets;
  return `${a}.${b}.${c}.0`;
}

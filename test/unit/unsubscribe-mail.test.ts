import { randomBytes, randomUUID } from 'node:crypto';
import { signLink, verifyLink } from '../../engine/consent/links';
import { MAX_HEADER_BYTES, subjectTokens, unsubscribeMailto } from '../../engine/email/unsubscribe-mail';

const key = randomBytes(32);
const token = signLink(key, 'unsub', { s: randomUUID() });

/** A message as a mail client writes one for a mailto URI (RFC 6068), CRLF line ends. */
const message = (headers: string[], body = 'Sent from my phone') => `${headers.join('\r\n')}\r\n\r\n${body}\r\n`;
const tokensOf = (raw: string | Buffer) => {
  const found = subjectTokens(raw);
  return found.subject ? found.tokens : 'no subject';
};

describe('the mailto form of List-Unsubscribe (RFC 2369, RFC 6068)', () => {
  it('names the address and the token, with the space encoded', () => {
    expect(unsubscribeMailto('unsubscribe@news.example.com', token)).toBe(`mailto:unsubscribe@news.example.com?subject=unsubscribe%20${token}`);
  });
});

describe('finding the unsubscribe token in a message Subject', () => {
  const from = 'From: Ola <ola@example.com>';
  const to = 'To: unsubscribe@news.example.com';

  it('finds it as a mail client sends it from the mailto', () => {
    expect(tokensOf(message([from, to, `Subject: unsubscribe ${token}`]))).toEqual([token]);
    expect(verifyLink(key, 'unsub', token).ok).toBe(true);
  });

  it('finds it with a "Re:" prefix, a lower-case header name, LF line ends, or the %20 left undecoded', () => {
    expect(tokensOf(message([from, `subject: Re: unsubscribe ${token}`]))).toEqual([token]);
    expect(tokensOf(`${from}\nSubject: unsubscribe ${token}\n\nbody\n`)).toEqual([token]);
    expect(tokensOf(message([from, `Subject: unsubscribe%20${token}`]))).toEqual([token]);
  });

  it('finds it in a folded Subject (RFC 5322 §2.2.3)', () => {
    expect(tokensOf(message([from, 'Subject: unsubscribe', `\t${token}`, to]))).toEqual([token]);
  });

  it('finds it in RFC 2047 encoded words, split across two (whitespace between them dropped) or base64', () => {
    const q = (text: string) => `=?UTF-8?Q?${[...text].map((c) => (/[A-Za-z0-9.]/.test(c) ? c : `=${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)).join('')}?=`;
    const half = Math.floor(token.length / 2);
    expect(tokensOf(message([from, `Subject: ${q(`unsubscribe ${token.slice(0, half)}`)}`, ` ${q(token.slice(half))}`]))).toEqual([token]);
    expect(tokensOf(message([from, `Subject: =?utf-8?B?${Buffer.from(`unsubscribe ${token}`).toString('base64')}?=`]))).toEqual([token]);
    // In Q encoding "_" is a space: a client that left the token's "_" unencoded breaks it, one that encoded it does not.
    expect(tokensOf(message([from, `Subject: =?iso-8859-2?Q?Wypisz_mnie:_${token.replace(/_/g, '=5F')}?=`]))).toEqual([token]);
  });

  it('reads the Subject header only: not the body, not another header', () => {
    expect(tokensOf(message([from, to, 'Subject: please remove me'], `unsubscribe ${token}`))).toEqual([]);
    expect(tokensOf(message([from, `X-Note: ${token}`, 'Subject: hello']))).toEqual([]);
    expect(tokensOf(message([from, to], `Subject: unsubscribe ${token}`))).toBe('no subject');
    expect(tokensOf('')).toBe('no subject');
  });

  it('returns every token-shaped string, for the caller to verify', () => {
    const other = signLink(key, 'prefs', { p: randomUUID() });
    expect(tokensOf(message([from, `Subject: ${other} unsubscribe ${token}`]))).toEqual([other, token]);
    expect(verifyLink(key, 'unsub', other).ok).toBe(false);
  });

  it('reads no further than the first 256 KiB', () => {
    const padding = Array.from({ length: Math.ceil(MAX_HEADER_BYTES / 1000) }, (_, i) => `X-Pad-${i}: ${'a'.repeat(990)}`);
    expect(tokensOf(message([from, ...padding, `Subject: unsubscribe ${token}`]))).toBe('no subject');
  });
});

import MailComposer from 'nodemailer/lib/mail-composer';
import { createMimeComposer, MimeError, quotedPrintable } from '../../engine/email/mime';

/** RFC 2045 §6.7 decoding: soft breaks removed, =XX back to bytes, read as UTF-8. */
function decodeQp(encoded: string): string {
  const bytes: number[] = [];
  const text = encoded.replace(/=\r\n/g, '');
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '=') {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(text.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Header lines of a message, unfolded, in order; Date and the boundary left out (they differ by nature). */
function headersOf(raw: string): string[] {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  return head
    .replace(/\r\n(?=[ \t])/g, '')
    .split('\r\n')
    .filter((line) => !/^(date|content-type):/i.test(line));
}

describe('quoted-printable bodies (RFC 2045 §6.7)', () => {
  const samples = [
    'Hello, world',
    'trailing space \nand tab\t\nand at the very end ',
    '= signs =3D and =\r\nmixed\rline\r\nends\n',
    'Zażółć gęślą jaźń — “quotes” and emoji 😀🎉 in a line long enough to need a soft break or two, surely',
    `${'ą'.repeat(100)}\n${'x'.repeat(300)}\n${'€'.repeat(50)}`,
    '.a line with a dot\n..two dots\nFrom the start',
    `https://shop.example/consent/confirm?token=${'a1B2c3D4e5'.repeat(12)}&purpose=newsletter`,
  ];

  it.each(samples)('decodes back to the text, CRLF line ends: %#', (text) => {
    const encoded = quotedPrintable(text);
    expect(decodeQp(encoded)).toBe(text.replace(/\r\n|\r|\n/g, '\r\n'));
  });

  it.each(samples)('keeps lines within 76 characters, only printable ASCII, no line ending in a space: %#', (text) => {
    for (const line of quotedPrintable(text).split('\r\n')) {
      expect(line.length).toBeLessThanOrEqual(76);
      expect(line).toMatch(/^[\x21-\x7e \t]*$/);
      expect(line).not.toMatch(/[ \t]$/);
    }
  });

  it('never splits an encoded character or a UTF-8 sequence across a soft break', () => {
    for (const line of quotedPrintable(`${'ż'.repeat(80)} ${'😀'.repeat(40)}`).split('\r\n')) {
      const body = line.endsWith('=') ? line.slice(0, -1) : line;
      expect(body).not.toMatch(/=.?$/);
      // Every line decodes to whole characters on its own.
      expect(decodeQp(body)).not.toContain('\uFFFD');
    }
  });
});

describe('the MIME composer', () => {
  const FROM = 'Sklep Łódź <news@shop.example>';
  const composer = createMimeComposer(FROM);
  const message = {
    to: 'jan.kowalski@example.com',
    subject: 'Potwierdź zapis — confirm your subscription',
    text: 'Cześć,\n\nplease confirm.',
    html: '<p>Cześć, <a href="https://shop.example/x">confirm</a>.</p>',
    messageId: '<send-1@consentflow>',
    headers: {
      'List-Unsubscribe': `<https://shop.example/u/${'t'.repeat(90)}>, <mailto:unsubscribe@news.example.com?subject=unsubscribe%20${'t'.repeat(90)}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      'X-Consentflow-Campaign': 'weekly_digest',
    },
  };

  it('writes the headers exactly as nodemailer does, and an envelope to match', async () => {
    const { envelope, raw } = composer.compose(message);
    const theirs = await new MailComposer({ ...message, from: FROM }).compile().build();
    expect(headersOf(raw.toString('utf8'))).toEqual(headersOf(theirs.toString('utf8')));
    expect(envelope).toEqual({ from: 'news@shop.example', to: ['jan.kowalski@example.com'] });
  });

  it.each([
    ['a plain subject', "This week's digest"],
    ['a quote', 'The "best" of the week'],
    ['something like an encoded word', 'Hello =?UTF-8?Q?x?= there'],
    ['a control character', 'bell\u0007here'],
    ['a line break (no header injection)', 'two\r\nBcc: victim@example.com'],
  ])('encodes a subject with %s as nodemailer does', async (_what, subject) => {
    const { raw } = composer.compose({ ...message, subject });
    const theirs = await new MailComposer({ ...message, subject, from: FROM }).compile().build();
    expect(headersOf(raw.toString('utf8'))).toEqual(headersOf(theirs.toString('utf8')));
    expect(raw.toString('utf8')).not.toMatch(/^Bcc:/m);
  });

  it('puts an international domain in punycode, in the header and the envelope', () => {
    const { envelope, raw } = composer.compose({ ...message, to: 'jan@żółw.example' });
    expect(envelope.to).toEqual(['jan@xn--w-uga1v8h.example']);
    expect(raw.toString('utf8')).toMatch(/^To: jan@xn--w-uga1v8h\.example\r$/m);
  });

  it('separates the parts with a boundary no part contains, and ends every line with CRLF', () => {
    const raw = composer.compose(message).raw.toString('utf8');
    const boundary = /boundary="([^"]+)"/.exec(raw)?.[1] as string;
    expect(raw.split(`--${boundary}`)).toHaveLength(4);
    expect(raw).toMatch(new RegExp(`--${boundary}--\\r\\n$`));
    expect(raw.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    expect(composer.compose(message).raw.toString('utf8')).not.toContain(`boundary="${boundary}"`);
  });

  it('refuses more than one recipient, and the headers it writes itself', () => {
    expect(() => composer.compose({ ...message, to: 'a@example.com, b@example.com' })).toThrow(MimeError);
    expect(() => composer.compose({ ...message, headers: { bcc: 'victim@example.com' } })).toThrow(MimeError);
    expect(() => composer.compose({ ...message, headers: { 'X-Bad: name': 'x' } })).toThrow(MimeError);
  });

  it('sends a text-only message as one text/plain part', () => {
    const raw = composer.compose({ ...message, html: undefined }).raw.toString('utf8');
    expect(raw).toMatch(/^Content-Type: text\/plain; charset=utf-8\r$/m);
    expect(raw).not.toContain('multipart');
    expect(decodeQp(raw.slice(raw.indexOf('\r\n\r\n') + 4).replace(/\r\n$/, ''))).toBe('Cześć,\r\n\r\nplease confirm.');
  });
});

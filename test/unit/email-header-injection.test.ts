import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { loadConfig } from '../../engine/config';
import { HEADER_FORBIDDEN, parseAddress, parseMailbox } from '../../engine/email/address';
import { createMailer, DeliveryError, messageIdHeader } from '../../engine/email/mailer';
import { createMimeComposer, MimeError } from '../../engine/email/mime';
import { createSmtpPool } from '../../engine/email/smtp-pool';
import { oneLine, TemplateSet } from '../../engine/email/templates';
import { checkEvent } from '../../engine/ingest/validate';
import { normalizeEmail } from '../../engine/vault/normalize';
import { tempDir } from '../support/config';
import { capturingLogger } from '../support/log-capture';

/**
 * Header injection and address fuzzing (issue 8; ASVS 5.0 V4.2.4, the nodemailer CVE-2021-23400
 * class): hostile addresses are refused at every boundary before the mailer, hostile subjects are
 * made one line, and whatever the input, the raw MIME never holds a header line nobody wrote.
 */

const CRLF_FORMS = ['\r\n', '\r', '\n', '\u0085', '\u2028', '\u2029', decodeURIComponent('%0d%0a'), decodeURIComponent('%0D%0A'), decodeURIComponent('%0a')];

const ACCEPTED: Array<[string, string]> = [
  ['jan@example.com', 'jan@example.com'],
  ['  Jan.Kowalski@Example.COM ', 'Jan.Kowalski@example.com'],
  ["o'brien+news@sub.example.co.uk", "o'brien+news@sub.example.co.uk"],
  ['jan@bücher.de', 'jan@xn--bcher-kva.de'],
  ['jan@xn--bcher-kva.de', 'jan@xn--bcher-kva.de'],
  ['jürgen@bücher.de', 'jürgen@xn--bcher-kva.de'],
  ['info@сайт.рф', 'info@xn--80aswg.xn--p1ai'],
  ['info@日本語ドメイン.jp', 'info@xn--eckwd4c7c5976acvb2w6i.jp'],
  [`${'a'.repeat(64)}@example.com`, `${'a'.repeat(64)}@example.com`],
];

const REJECTED: Array<[string, string, RegExp]> = [
  ['CR LF and a Bcc header', 'a@example.com\r\nBcc: victim@evil.example', /line breaks/],
  ['a bare LF', 'a@example.com\nBcc: victim@evil.example', /line breaks/],
  ['a decoded %0d%0a', `a${decodeURIComponent('%0d%0a')}bcc@example.com`, /line breaks/],
  ['%0d%0a as it is', 'a%0d%0abcc@example.com', /before the @ may hold only/],
  ['a percent-encoded domain', 'a@exa%6Dple.com', /domain may hold only/],
  ['a quoted local part with CR LF', '"a\r\nBcc: x"@example.com', /line breaks/],
  ['a quoted local part', '"a\\r\\nBcc: x"@example.com', /quoted local parts/],
  ['a quoted local part with a space', '"john doe"@example.com', /quoted local parts/],
  ['group syntax', 'friends: a@example.com;', /no lists, groups/],
  ['group syntax without spaces', 'g:a@example.com;', /no lists, groups/],
  ['an empty group before an address', 'undisclosed-recipients:;a@example.com', /no lists, groups/],
  ['a list', 'a@example.com, b@example.com', /no lists, groups/],
  ['a display name', 'Jan <jan@example.com>', /angle brackets/],
  ['display-name smuggling', 'victim@evil.example <jan@example.com>', /angle brackets/],
  ['angle brackets alone', '<jan@example.com>', /angle brackets/],
  ['a comment', 'jan@example.com (Jan)', /comments/],
  ['a comment in the local part', 'jan(x)@example.com', /comments/],
  ['a space', 'jan kowalski@example.com', /no spaces/],
  ['a tab inside', 'jan\t@example.com', /line breaks|spaces/],
  ['a NUL', 'jan\u0000@example.com', /line breaks/],
  ['a zero-width space', 'jan\u200b@example.com', /line breaks/],
  ['a soft hyphen in the domain', 'jan@exam\u00adple.com', /line breaks/],
  ['an RTL override', 'jan\u202e@example.com', /line breaks/],
  ['a fullwidth at sign', 'jan\uff20example.com', /@ is missing/],
  ['two at signs', 'jan@evil.example@example.com', /exactly one @/],
  ['a source route', '@relay.example:jan@example.com', /no lists, groups/],
  ['the percent hack', 'jan%example.com@relay.example', /before the @ may hold only/],
  ['a bang path', 'relay!jan@example.com', /before the @ may hold only/],
  ['a pipe', '|/bin/sh@example.com', /before the @ may hold only/],
  ['a backslash', 'jan\\@example.com', /backslashes/],
  ['an address literal', 'jan@[192.0.2.1]', /address literals/],
  ['a bare IP', 'jan@192.0.2.1', /IP address/],
  ['a single-label domain', 'jan@localhost', /two labels/],
  ['a trailing dot', 'jan@example.com.', /letters, digits and hyphens/],
  ['a leading dot', '.jan@example.com', /dot/],
  ['two dots', 'ja..n@example.com', /dot/],
  ['an underscore in the domain', 'jan@exa_mple.com', /letters, digits, hyphens/],
  ['a hyphen at a label edge', 'jan@-example.com', /letters, digits and hyphens|not a valid host/],
  ['a Cyrillic а in a Latin domain (pаypal.com)', 'jan@p\u0430ypal.com', /mixes letters of Cyrillic and Latin/],
  ['the same look-alike in punycode', 'jan@xn--pypal-4ve.com', /mixes letters of Cyrillic and Latin/],
  ['a Greek ο in a Latin domain', 'jan@g\u03bfogle.com', /mixes letters of Greek and Latin/],
  ['an all-Cyrillic look-alike label', 'jan@\u0440\u0430\u0443\u0441\u0430.com', /Cyrillic letters that look Latin/],
  ['a Cyrillic а in the local part', 'j\u0430n@example.com', /mixes letters/],
  ['a 65-octet local part', `${'a'.repeat(65)}@example.com`, /longer than 64 octets/],
  ['a 33-character local part of 2-octet letters', `${'ü'.repeat(33)}@example.com`, /longer than 64 octets/],
  ['a 64-character label', `jan@${'a'.repeat(64)}.com`, /longer than 63/],
  ['an address over 254 octets', `jan@${['a', 'b', 'c', 'd'].map((c) => c.repeat(63)).join('.')}.com`, /longer than 254|not a valid host/],
  ['a huge input', `${'a'.repeat(5000)}@example.com`, /longer than 254/],
  ['an empty string', '', /empty/],
  ['no local part', '@example.com', /before the @ is empty/],
];

describe('the address rule (engine/email/address.ts)', () => {
  it.each(ACCEPTED)('accepts %j as %j', (raw, address) => {
    expect(parseAddress(raw)).toMatchObject({ ok: true, address });
  });

  it.each(REJECTED)('refuses %s', (_what, raw, reason) => {
    const parsed = parseAddress(raw);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.reason).toMatch(/^expected one plain email address local@domain: /);
    expect(parsed.reason).toMatch(reason);
    // The reason never quotes the input: it is shown to clients and stored with failed sends.
    expect(parsed.reason).not.toContain('example.com');
    expect(parsed.reason).not.toMatch(/[\r\n]/);
    expect(normalizeEmail(raw)).toBeUndefined();
  });

  it.each(CRLF_FORMS)('refuses every form of line break, here %j, wherever it is', (lineBreak) => {
    for (const raw of [`a${lineBreak}@example.com`, `a@exa${lineBreak}mple.com`, `a@example.com${lineBreak}Bcc: x@evil.example`, `${lineBreak}a@example.com`]) {
      expect(parseAddress(raw).ok).toBe(false);
    }
  });

  it('accepts for the operator\'s sender alone a one-label domain, and a display name without specials', () => {
    expect(parseAddress('no-reply@localhost', { allowSingleLabelDomain: true })).toMatchObject({ ok: true });
    expect(parseMailbox('consentflow <no-reply@localhost>', { allowSingleLabelDomain: true })).toEqual({ ok: true, name: 'consentflow', address: 'no-reply@localhost' });
    expect(parseMailbox('"Shop, Inc." <news@shop.example>')).toEqual({ ok: true, name: 'Shop, Inc.', address: 'news@shop.example' });
    for (const bad of ['Shop\r\nBcc: x@evil.example <news@shop.example>', 'a, b@evil.example <news@shop.example>', 'g: <news@shop.example>', '"Sh"op" <news@shop.example>', 'Shop <news@shop.example>, x@evil.example']) {
      expect(parseMailbox(bad).ok).toBe(false);
    }
  });

  it('property: an accepted address is one bare addr-spec with nothing that could end or add a header, and reads the same again', () => {
    let accepted = 0;
    fc.assert(
      fc.property(hostileAddress(), (raw) => {
        const parsed = parseAddress(raw);
        if (!parsed.ok) return;
        accepted++;
        expect(parsed.address).not.toMatch(/[\s\p{C}<>(),;:"\\[\]%!|]/u);
        expect(parsed.address.split('@')).toHaveLength(2);
        expect(Buffer.byteLength(parsed.address)).toBeLessThanOrEqual(254);
        expect(parsed.domain).toMatch(/^[a-z0-9.-]+$/);
        expect(parseAddress(parsed.address)).toEqual(parsed);
      }),
      { numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('ingestion: traits.email is checked at the boundary, naming the field', () => {
  const identify = (traits: Record<string, unknown>, where: 'traits' | 'context' = 'traits') =>
    checkEvent(where === 'traits' ? { userId: 'u1', traits } : { userId: 'u1', context: { traits } }, 'identify', new Date(), undefined);

  it.each(REJECTED.filter(([, raw]) => raw !== ''))('refuses %s in traits.email and in context.traits.email', (_what, raw) => {
    for (const where of ['traits', 'context'] as const) {
      const checked = identify({ email: raw }, where);
      expect(checked).toMatchObject({ ok: false, code: 'VALIDATION_FAILED' });
      const path = where === 'traits' ? 'traits.email' : 'context.traits.email';
      if (!checked.ok) expect(checked.message.startsWith(`${path}: `)).toBe(true);
    }
  });

  it('refuses an address that is not text, and the empty string; null leaves it out', () => {
    expect(identify({ email: 42 })).toMatchObject({ ok: false, message: 'traits.email: expected an email address as a string (or null)' });
    expect(identify({ email: ['a@example.com'] })).toMatchObject({ ok: false });
    expect(identify({ email: '' })).toMatchObject({ ok: false, message: expect.stringContaining('traits.email: ') });
    expect(identify({ email: null, plan: 'pro' })).toMatchObject({ ok: true });
    expect(identify({ email: 'jan@bücher.de' })).toMatchObject({ ok: true });
  });
});

describe('configuration: EMAIL_FROM and UNSUBSCRIBE_MAILTO', () => {
  it.each([
    'Shop\r\nBcc: x@evil.example <news@shop.example>',
    'Shop <news@shop.example>\r\nBcc: x@evil.example',
    'a, b@evil.example <news@shop.example>',
    'g: <news@shop.example>',
    'Shop <news@p\u0430ypal.com>',
    'Shop <"a b"@shop.example>',
    'Shop (comment) <news@shop.example>',
  ])('refuses EMAIL_FROM=%j', (from) => {
    expect(() => loadConfig({ EMAIL_FROM: from })).toThrow(/EMAIL_FROM=.*expected addr@domain or Name <addr@domain>/);
  });

  it.each(['u@news.example.com\r\nBcc: x@evil.example', 'u..x@news.example.com', 'u@localhost', '"u"@news.example.com'])('refuses UNSUBSCRIBE_MAILTO=%j', (value) => {
    expect(() => loadConfig({ UNSUBSCRIBE_MAILTO: value })).toThrow(/UNSUBSCRIBE_MAILTO=.*expected a bare address/);
  });
});

/** Header names the engine writes; anything else at the start of a header line was injected. */
const KNOWN_HEADERS = new Set([
  'from', 'to', 'subject', 'message-id', 'date', 'mime-version', 'content-type', 'content-transfer-encoding',
  'list-unsubscribe', 'list-unsubscribe-post', 'x-consentflow-campaign', 'auto-submitted',
]);

/** The header block: every line a known header or a folded continuation; each header once. */
function headerNames(raw: Buffer): string[] {
  const text = raw.toString('utf8');
  // CR and LF only ever come as CRLF (RFC 5322 §2.1), in the headers and the body alike.
  expect(text.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const names: string[] = [];
  for (const line of head.split('\r\n')) {
    if (/^[ \t]/.test(line)) {
      expect(names.length).toBeGreaterThan(0);
      continue;
    }
    const name = /^([!-9;-~]+):/.exec(line)?.[1]?.toLowerCase();
    expect(name).toBeDefined();
    expect(KNOWN_HEADERS.has(name as string)).toBe(true);
    names.push(name as string);
  }
  expect(new Set(names).size).toBe(names.length);
  return names;
}

/** Text built from the pieces injections are made of, and anything else. */
function hostileText(): fc.Arbitrary<string> {
  const piece = fc.oneof(
    fc.constantFrom(
      ...CRLF_FORMS,
      '\r\nBcc: victim@evil.example',
      '\nCc: victim@evil.example',
      '\r\n\r\n<html>body</html>',
      'Bcc:',
      '%0d%0aBcc:%20x@evil.example',
      '=?utf-8?Q?=0D=0ABcc:_victim@evil.example?=',
      '\u0000',
      '\t',
      ' ',
      '"',
      '<victim@evil.example>',
      ',',
      ';',
      ':',
      '(',
      ')',
      '\u0430',
      'ü',
      '😀',
      'x'.repeat(80),
    ),
    fc.string({ unit: 'binary', maxLength: 20 }),
  );
  return fc.array(piece, { maxLength: 8 }).map((parts) => parts.join(''));
}

/** Addresses: a valid one with hostile text around or inside, or hostile text outright. */
function hostileAddress(): fc.Arbitrary<string> {
  const local = fc.constantFrom('jan', 'Jan.Kowalski', "o'brien+x", 'j\u0430n', '"a b"', 'a%0d%0a', 'jürgen');
  const domain = fc.constantFrom('example.com', 'bücher.de', 'p\u0430ypal.com', 'xn--pypal-4ve.com', 'localhost', '[192.0.2.1]', 'exa%6Dple.com', 'сайт.рф');
  return fc.oneof(
    fc.tuple(hostileText(), local, hostileText(), domain, hostileText()).map(([a, l, b, d, c]) => `${a}${l}${b}@${d}${c}`),
    fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`),
    hostileText(),
  );
}

describe('the MIME composer never writes an injected header', () => {
  const composer = createMimeComposer('Sklep Łódź <news@shop.example>');
  const base = {
    to: 'jan@example.com',
    subject: 'Hello',
    text: 'Hello',
    html: '<p>Hello</p>',
    messageId: '<send-1@consentflow>',
    headers: { 'List-Unsubscribe': '<https://shop.example/u/abc>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click', 'X-Consentflow-Campaign': 'welcome_series' },
  };

  it.each(REJECTED)('refuses a recipient with %s, before any byte is written', (_what, to) => {
    expect(() => composer.compose({ ...base, to })).toThrow(MimeError);
  });

  it.each([
    ['CR LF', 'Hi\r\nBcc: victim@evil.example'],
    ['LF LF (an early body)', 'Hi\n\n<html>'],
    ['a decoded %0d%0a', `Hi${decodeURIComponent('%0d%0a')}Bcc: victim@evil.example`],
    ['NEL', 'Hi\u0085Bcc: victim@evil.example'],
    ['a line separator', 'Hi\u2028Bcc: victim@evil.example'],
    ['an encoded word hiding CR LF', 'Hi =?utf-8?Q?=0D=0ABcc:_victim@evil.example?='],
  ])('keeps a subject with %s on one Subject header', (_what, subject) => {
    const { raw, envelope } = composer.compose({ ...base, subject });
    const names = headerNames(raw);
    expect(names.filter((n) => n === 'subject')).toHaveLength(1);
    expect(names).not.toContain('bcc');
    expect(envelope.to).toEqual(['jan@example.com']);
  });

  it.each([
    ['List-Unsubscribe', '<https://shop.example/u/abc>\r\nBcc: victim@evil.example'],
    ['List-Unsubscribe', '<https://shop.example/u/abc>\nBcc: victim@evil.example'],
    ['X-Consentflow-Campaign', `x${decodeURIComponent('%0d%0a')}Bcc: victim@evil.example`],
    ['X-Consentflow-Campaign', 'x\u0000y'],
    ['X-Consentflow-Campaign', 'x\u2028y'],
  ])('refuses a %s header holding a control character', (key, value) => {
    expect(() => composer.compose({ ...base, headers: { ...base.headers, [key]: value } })).toThrow(/holds a line break or another control character/);
  });

  it.each(['Bcc', 'cc', 'Reply-To', 'Sender', 'Return-Path', 'Resent-To', 'Disposition-Notification-To', 'Subject', 'X-Bad: name', 'X-Bad\r\nBcc'])('refuses a caller header named %j', (key) => {
    expect(() => composer.compose({ ...base, headers: { [key]: 'victim@evil.example' } })).toThrow(MimeError);
  });

  it('refuses a sender that is not one valid mailbox', () => {
    for (const from of ['Shop\r\nBcc: x@evil.example <news@shop.example>', 'a@shop.example, b@shop.example', 'g: news@shop.example;', 'news@p\u0430ypal.com']) {
      expect(() => createMimeComposer(from)).toThrow(MimeError);
    }
    expect(createMimeComposer('"Shop, Inc." <news@shop.example>').compose(base).envelope.from).toBe('news@shop.example');
  });

  it('refuses a Message-ID that could inject a header', () => {
    for (const id of ['a\r\nBcc: x', 'a\u0000b', 'a\u000bb', 'a b', '<a>b>']) {
      expect(() => messageIdHeader(id)).toThrow(DeliveryError);
    }
  });

  it('property: for any recipient, subject and header values, the message is refused or its header block holds only the headers written', () => {
    // Mostly hostile, often harmless: both outcomes, refused and composed, are exercised many times.
    const headerValue = fc.oneof(hostileText(), fc.string({ unit: 'grapheme-ascii', maxLength: 40 }));
    const recipient = fc.oneof(hostileAddress(), fc.constantFrom('jan@example.com', 'jürgen@bücher.de', "o'brien+x@sub.example.co.uk"));
    let composedCount = 0;
    fc.assert(
      fc.property(recipient, hostileText(), headerValue, headerValue, (to, subject, unsubscribe, campaign) => {
        const message = { ...base, to, subject, headers: { 'List-Unsubscribe': `<https://shop.example/u/${unsubscribe}>`, 'X-Consentflow-Campaign': campaign } };
        let composed;
        try {
          composed = composer.compose(message);
        } catch (err) {
          expect(err).toBeInstanceOf(MimeError);
          // Refused for a reason the rule names: the recipient, or a control character in a header.
          expect(!parseAddress(to).ok || HEADER_FORBIDDEN.test(unsubscribe) || HEADER_FORBIDDEN.test(campaign)).toBe(true);
          return;
        }
        const parsed = parseAddress(to);
        expect(parsed.ok).toBe(true);
        const names = headerNames(composed.raw);
        for (const name of ['from', 'to', 'subject', 'message-id', 'list-unsubscribe']) expect(names).toContain(name);
        expect(composed.envelope).toEqual({ from: 'news@shop.example', to: [parsed.ok ? parsed.address : ''] });
        composedCount++;
      }),
      { numRuns: 3000 },
    );
    expect(composedCount).toBeGreaterThan(300);
  });
});

describe('template subjects: a trait or a first name with CR/LF renders as one line', () => {
  const dir = tempDir('cf-hdr-templates');
  fs.mkdirSync(path.join(dir, 'templates'));
  fs.writeFileSync(
    path.join(dir, 'templates', 'hello.html'),
    '---\nsubject: "Hi {{ first_name }}, news for {{ traits.company }}"\npreheader: "{{ traits.company }}"\n---\n<p>Hi {{ first_name }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>\n',
  );
  const loaded = TemplateSet.load(dir, new Set(['company']));
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const templates = loaded.templates;
  const composer = createMimeComposer('consentflow <no-reply@localhost>');
  const vars = (firstName: string, company: string) => ({
    first_name: firstName,
    traits: { company },
    unsubscribe_url: 'https://shop.example/u/t',
    preferences_url: 'https://shop.example/p/t',
    campaign: { id: 'c', name: 'C' },
    send_id: 's',
  });

  it('collapses line breaks to spaces and drops other control characters', async () => {
    const rendered = await templates.render('hello', vars('Kim\r\nBcc: victim@evil.example', `Acme${decodeURIComponent('%0d%0a')}Cc: x@evil.example\u0000\u2028`));
    expect(rendered.subject).toBe('Hi Kim Bcc: victim@evil.example, news for Acme Cc: x@evil.example');
    expect(rendered.preheader).toBe('Acme Cc: x@evil.example');
    expect(oneLine('a\u0085b\u0007c\t\td')).toBe('a bc d');
  });

  it('property: whatever a name or trait holds, the subject is one line and the message one Subject header', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText(), hostileText(), async (firstName, company) => {
        const rendered = await templates.render('hello', vars(firstName, company));
        expect(rendered.subject).not.toMatch(/[\p{Cc}\u2028\u2029]/u);
        const names = headerNames(composer.compose({ to: 'jan@example.com', subject: rendered.subject, text: rendered.text, html: rendered.html, messageId: '<m@x>' }).raw);
        expect(names.filter((n) => n === 'subject')).toHaveLength(1);
      }),
      { numRuns: 500 },
    );
  });
});

describe('the mailer refuses before nodemailer sees anything', () => {
  it('fails a hostile recipient permanently, and writes nothing', async () => {
    const outbox = tempDir('cf-hdr-outbox');
    const mailer = createMailer({ smtpUrl: undefined, from: 'consentflow <no-reply@localhost>', outboxDir: outbox, log: capturingLogger().log });
    for (const to of ['a@example.com\r\nBcc: victim@evil.example', '"a\r\nBcc: x"@example.com', 'g: a@example.com, victim@evil.example;', 'a@p\u0430ypal.com']) {
      await expect(mailer.send({ to, subject: 'x', text: 'x', messageId: 'm-1' })).rejects.toMatchObject({ name: 'DeliveryError', permanent: true, code: 'EMESSAGE' });
    }
    await mailer.close();
    expect(fs.existsSync(outbox) ? fs.readdirSync(outbox) : []).toEqual([]);
  });

  it('the SMTP pool refuses an envelope that could write an SMTP command of its own, before connecting', async () => {
    // Port 9 (discard): nothing is ever connected to, the refusal comes first.
    const pool = createSmtpPool({ url: 'smtp://127.0.0.1:9', maxConnections: 1, connectionTimeout: 1000, greetingTimeout: 1000, dnsTimeout: 1000, socketTimeout: 1000 });
    const raw = Buffer.from('Subject: x\r\n\r\nx\r\n');
    const envelopes = [
      { from: 'news@shop.example', to: ['a@example.com>\r\nRCPT TO:<victim@evil.example'] },
      { from: 'news@shop.example\r\nRSET', to: ['a@example.com'] },
      { from: 'news@shop.example', to: ['a@example.com', 'Victim <victim@evil.example>'] },
      { from: 'news@shop.example', to: [] },
    ];
    for (const envelope of envelopes) await expect(pool.send(envelope, raw)).rejects.toMatchObject({ code: 'EENVELOPE' });
    pool.close();
  });
});

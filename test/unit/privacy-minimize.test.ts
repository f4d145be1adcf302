import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { truncateIp } from '../../engine/privacy/ip';
import { DEFAULT_PROPERTIES_FILE, loadPropertiesPolicy, PropertiesPolicy } from '../../engine/privacy/properties-policy';
import { containsPii, scrubText, scrubUrl } from '../../engine/privacy/scrub-text';
import { summarizeUserAgent } from '../../engine/privacy/user-agent';
import { PropertiesFile } from '../../schemas/properties-file';
import { tempDir } from '../support/config';

const R = '[redacted]';
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('scrubText', () => {
  it.each([
    ['email', 'write to jan.kowalski@example.com please', `write to ${R} please`],
    ['URL-encoded email', 'next=jan%40example.com', `next=${R}`],
    ['URL-encoded dotted email', 'u=jan.kowalski%40example.com&x=1', `u=${R}&x=1`],
    ['international phone', 'call +48 601 234 567 today', `call ${R} today`],
    ['dashed international phone', 'tel +1-202-555-0143.', `tel ${R}.`],
    ['US phone with area code', 'office (202) 555-0143', `office ${R}`],
    ['national phone', 'mobile 601-234-567', `mobile ${R}`],
    ['compact E.164 phone', 'tel:+48601234567', `tel:${R}`],
    ['PESEL', 'PESEL 44051401359', `PESEL ${R}`],
    ['card with spaces', 'card 4111 1111 1111 1111 exp 12/27', `card ${R} exp 12/27`],
    ['card with dashes', '5500-0000-0000-0004', R],
    ['card without separators', 'amex 378282246310005', `amex ${R}`],
  ])('replaces a %s', (_kind, input, expected) => {
    expect(scrubText(input)).toBe(expected);
    expect(containsPii(input)).toBe(true);
  });

  it.each([
    ['PESEL with a wrong check digit', 'PESEL 44051401358'],
    ['card failing Luhn', 'card 4111 1111 1111 1112'],
    ['card-length number failing Luhn', '4111111111111112'],
    ['ISO timestamp', 'at 2026-11-29T10:00:00Z'],
    ['date and time', 'at 2026-11-29 10:00:00'],
    ['day-first date', 'on 29-11-2026 10 11'],
    ['millisecond timestamp', 'ts 1764410400000'],
    ['price', 'total 1299.99 PLN'],
    ['UUID', 'id 123e4567-e89b-12d3-a456-426614174000'],
    ['order id', 'order ORD-2026-000123'],
    ['short numbers', 'sizes 38 40 42, qty 3'],
    ['IPv4 address', 'from 203.0.113.77'],
  ])('leaves a %s alone', (_kind, input) => {
    expect(scrubText(input)).toBe(input);
    expect(containsPii(input)).toBe(false);
  });

  it('replaces each finding and keeps the text around it', () => {
    expect(scrubText('ORD-2026-000123 for jan@example.com, +48 601 234 567, total 1299.99')).toBe(
      `ORD-2026-000123 for ${R}, ${R}, total 1299.99`,
    );
  });

  it('handles long adversarial input (a backtracking pattern would hang here until the test times out)', () => {
    const inputs = ['a'.repeat(100_000) + '@', '1 '.repeat(50_000), '1-'.repeat(50_000), 'a%4'.repeat(30_000) + '@x'];
    for (const input of inputs) expect(scrubText(input)).toBe(input);
  });
});

describe('scrubUrl', () => {
  it('redacts a parameter value carrying an email and keeps the others byte-identical', () => {
    expect(scrubUrl('/signup?email=jan.kowalski%40example.com&utm_source=x')).toBe(`/signup?email=${R}&utm_source=x`);
    expect(scrubUrl('https://shop.example/p?utm_source=news%20letter&tel=%2B48+601+234+567#top')).toBe(
      `https://shop.example/p?utm_source=news%20letter&tel=${R}#top`,
    );
  });

  it('redacts path segments and fragments', () => {
    expect(scrubUrl('/users/jan@example.com/profile')).toBe(`/users/${R}/profile`);
    expect(scrubUrl('https://shop.example/users/jan%40example.com/profile?x=1')).toBe(
      `https://shop.example/users/${R}/profile?x=1`,
    );
    expect(scrubUrl('https://app.example/#/signup?email=jan%40example.com&step=2')).toBe(
      `https://app.example/#/signup?email=${R}&step=2`,
    );
  });

  it('drops userinfo and leaves clean URLs untouched', () => {
    expect(scrubUrl('https://jan:secret@shop.example/p')).toBe('https://shop.example/p');
    const clean = 'https://shop.example/p/2026-11-29/ORD-2026-000123?utm_campaign=black%20friday&price=1299.99';
    expect(scrubUrl(clean)).toBe(clean);
  });

  it('falls back to scrubText for what is not a URL', () => {
    expect(scrubUrl('see jan@example.com')).toBe(`see ${R}`);
  });
});

describe('truncateIp', () => {
  it.each([
    ['203.0.113.77', '203.0.113.0'],
    ['2001:db8:abcd:12::1', '2001:db8:abcd::'],
    ['::ffff:203.0.113.77', '203.0.113.0'],
  ])('truncates %s to %s', (ip, expected) => {
    expect(truncateIp(ip)).toBe(expected);
  });

  it.each([undefined, '', 'not an ip', '203.0.113', '203.0.113.256', '127.1', '203.0.113.77:8080', '010.0.0.1', '1.2.3.4.5', '0x7f.0.0.1'])('rejects %p', (ip) => {
    expect(truncateIp(ip)).toBeUndefined();
  });

  it('answers as ipaddr.js does for any dotted string (the IPv4 fast path)', () => {
    const part = fc.oneof(fc.nat({ max: 300 }).map(String), fc.constantFrom('00', '01', '0', '255', '256', '999', '1000', '', ' 1', '0x1', '1e2'));
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 5 }), (parts) => {
        const text = parts.join('.');
        const expected = ipaddr.IPv4.isValidFourPartDecimal(text.trim()) ? `${ipaddr.IPv4.parse(text.trim()).octets.slice(0, 3).join('.')}.0` : undefined;
        // Not IPv4 for ipaddr.js: then IPv6 or nothing, which the fast path leaves to it.
        if (expected !== undefined || !ipaddr.IPv6.isValid(text.trim())) expect(truncateIp(text)).toBe(expected);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('summarizeUserAgent', () => {
  it('summarizes a desktop Chrome', () => {
    const ua =
      'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';
    expect(summarizeUserAgent(ua)).toEqual({ browser: 'Chrome', os: 'Windows', deviceType: 'desktop' });
  });

  it('summarizes an iPhone Safari', () => {
    const ua =
      'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';
    expect(summarizeUserAgent(ua)).toEqual({ browser: 'Safari', os: 'iOS', deviceType: 'mobile' });
  });

  it.each([undefined, '', '   ', 'garbage'])('returns undefined for %p', (ua) => {
    expect(summarizeUserAgent(ua)).toBeUndefined();
  });
});

describe('properties policy', () => {
  const dir = tempDir('cf-properties');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };
  const messageOf = (file: string): string => {
    try {
      loadPropertiesPolicy(file);
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('expected loading to fail');
  };

  it('ships rules/properties.yaml with the built-in default content', () => {
    const text = fs.readFileSync(path.join(__dirname, '../../rules/properties.yaml'), 'utf8');
    expect(text.startsWith('# yaml-language-server: $schema=../schemas/json/properties.schema.json\n')).toBe(true);
    expect(loadPropertiesPolicy(path.join(__dirname, '../../rules/properties.yaml'))).toEqual(
      new PropertiesPolicy(DEFAULT_PROPERTIES_FILE),
    );
  });

  it('uses the default policy when the file is missing', () => {
    const policy = loadPropertiesPolicy(path.join(dir, 'missing.yaml'));
    expect(policy).toEqual(new PropertiesPolicy(DEFAULT_PROPERTIES_FILE));
    expect(policy.minimizeProperties('track', 'Order Completed', { order_id: 'A1', coupon: 'X' })).toEqual({ order_id: 'A1' });
  });

  it('names the file and the path of every invalid entry', () => {
    const file = write('bad.yaml', 'events:\n  "Order Completed":\n    allow: [1]\nextra: true\n');
    expect(messageOf(file)).toBe(
      `${file}: events.Order Completed.allow.0: expected string, received number; ${file}: Unrecognized key: "extra"`,
    );
  });

  it('rejects a trait listed as both plain and personal', () => {
    const file = write('both.yaml', 'traits:\n  allow: [plan, name]\n  pii: [name]\n');
    expect(messageOf(file)).toMatch(new RegExp(`^${escape(file)}: traits\\.allow\\.1: "name" is listed in both traits\\.allow and traits\\.pii`));
    expect(PropertiesFile.safeParse({ traits: { allow: ['x'.repeat(101)] } }).success).toBe(false);
  });

  it('reports a YAML syntax error with its line', () => {
    const file = write('syntax.yaml', 'pages:\n  allow: [path\ntraits: {}\n');
    expect(messageOf(file)).toMatch(new RegExp(`^${escape(file)}:3:\\d+: `));
  });

  it('reads JSON as well', () => {
    const file = write('props.json', JSON.stringify({ pages: { allow: ['title'] } }));
    expect(loadPropertiesPolicy(file).minimizeProperties('screen', 'Home', { title: 'Home', path: '/' })).toEqual({ title: 'Home' });
  });

  describe('minimizeProperties', () => {
    const policy = new PropertiesPolicy(DEFAULT_PROPERTIES_FILE);

    it('keeps only the allowed keys of the event and scrubs them', () => {
      expect(
        policy.minimizeProperties('track', 'Order Completed', {
          order_id: 'ORD-2026-000123 for jan@example.com',
          total: 1299.99,
          currency: 'PLN',
          email: 'jan@example.com',
          coupon: 'WELCOME',
        }),
      ).toEqual({ order_id: `ORD-2026-000123 for ${R}`, total: 1299.99, currency: 'PLN' });
    });

    it('falls back to default for unknown events and other calls', () => {
      expect(policy.minimizeProperties('track', 'Product Viewed', { sku: 'A1' })).toEqual({});
      expect(policy.minimizeProperties('identify', undefined, { sku: 'A1' })).toEqual({});
      expect(policy.minimizeProperties('track', 'Order Completed', undefined)).toEqual({});
    });

    it('scrubs URLs, nested values, and drops non-finite numbers and deep nesting', () => {
      const deep = { a: { b: { c: { d: { e: { f: 'jan@example.com' } } } } } };
      expect(
        policy.minimizeProperties('page', undefined, {
          url: 'https://shop.example/signup?email=jan.kowalski%40example.com&utm_source=x',
          referrer: '/users/jan@example.com/profile',
          title: 'Thanks, jan@example.com',
          search: ['call +48 601 234 567', { q: 'jan@example.com', n: Number.NaN, href: '/a?e=jan%40example.com' }],
          category: deep,
          name: Number.POSITIVE_INFINITY,
          path: '/signup',
        }),
      ).toEqual({
        url: `https://shop.example/signup?email=${R}&utm_source=x`,
        referrer: `/users/${R}/profile`,
        title: `Thanks, ${R}`,
        search: [`call ${R}`, { q: R, href: `/a?e=${R}` }],
        category: { a: { b: { c: { d: {} } } } },
        path: '/signup',
      });
    });
  });

  describe('splitTraits', () => {
    it('puts personal traits in pii as strings, keeps allowed ones scrubbed and drops the rest', () => {
      const policy = new PropertiesPolicy(PropertiesFile.parse({ traits: { allow: ['plan', 'company'], pii: ['name', 'address'] } }));
      expect(
        policy.splitTraits({
          email: 'jan@example.com',
          phone: 48601234567,
          name: 'Jan Kowalski',
          address: { city: 'Kraków', street: 'Długa 1' },
          plan: 'pro',
          company: 'ACME, contact jan@example.com',
          favouriteColour: 'green',
        }),
      ).toEqual({
        pii: {
          email: 'jan@example.com',
          phone: '48601234567',
          name: 'Jan Kowalski',
          address: '{"city":"Kraków","street":"Długa 1"}',
        },
        traits: { plan: 'pro', company: `ACME, contact ${R}` },
      });
      expect(policy.splitTraits(undefined)).toEqual({ pii: {}, traits: {} });
    });
  });
});

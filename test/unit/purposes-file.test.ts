import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_PURPOSES_FILE, loadPurposeCatalog, PurposeCatalog } from '../../engine/consent/purposes';
import { AppError } from '../../engine/errors';
import { PurposesFile } from '../../schemas/purposes-file';
import { tempDir } from '../support/config';

const SHIPPED = path.join(__dirname, '../../rules/purposes.yaml');

// A valid file to vary: one purpose, one notice.
const PURPOSE = `  email_marketing:
    description: Our newsletter.
    legal_basis: consent
    allows: [send_marketing_email]
    retention: 2y
`;
const NOTICE = `  - id: form
    version: 1
    text: Send me the newsletter.
    purposes: [email_marketing]
`;

describe('rules/purposes.yaml', () => {
  const dir = tempDir('cf-purposes');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  let count = 0;
  const write = (text: string): string => {
    const file = path.join(dir, `purposes-${++count}.yaml`);
    fs.writeFileSync(file, text);
    return file;
  };
  const errorOf = (file: string): AppError => {
    try {
      loadPurposeCatalog(file);
    } catch (err) {
      return err as AppError;
    }
    throw new Error('expected loading to fail');
  };
  const messageOf = (file: string): string => errorOf(file).message;

  describe('loading', () => {
    it('ships the built-in default content, with the editor schema line', () => {
      const text = fs.readFileSync(SHIPPED, 'utf8');
      expect(text.startsWith('# yaml-language-server: $schema=../schemas/json/purposes.schema.json\n')).toBe(true);
      expect(PurposesFile.parse(parse(text))).toEqual(DEFAULT_PURPOSES_FILE);
      expect(loadPurposeCatalog(SHIPPED)).toEqual(new PurposeCatalog(DEFAULT_PURPOSES_FILE));
      expect(loadPurposeCatalog(SHIPPED).names).toEqual(['email_marketing', 'profiling', 'analytics']);
    });

    it('uses the default when the file is missing', () => {
      expect(loadPurposeCatalog(path.join(dir, 'missing.yaml'))).toEqual(new PurposeCatalog(DEFAULT_PURPOSES_FILE));
    });

    it('keeps the default frozen', () => {
      expect(Object.isFrozen(DEFAULT_PURPOSES_FILE.notices[0]?.purposes)).toBe(true);
      expect(Object.isFrozen(DEFAULT_PURPOSES_FILE.purposes['email_marketing']?.description)).toBe(true);
    });

    it('fills in the optional lists and reads JSON as well', () => {
      const file = path.join(dir, 'purposes.json');
      fs.writeFileSync(
        file,
        JSON.stringify({ purposes: { p: { description: 'x', legal_basis: 'legitimate_interest', allows: ['build_segments'], retention: '90d' } } }),
      );
      const catalog = loadPurposeCatalog(file);
      expect(catalog.get('p')).toMatchObject({ tcfPurposes: [], segmentCategories: [], legalBasis: 'legitimate_interest' });
      expect(catalog.hasNotice('form')).toBe(false);
    });
  });

  describe('errors name the file and the path', () => {
    it.each<[string, string, string]>([
      [
        'an unknown legal basis',
        `purposes:\n${PURPOSE.replace('legal_basis: consent', 'legal_basis: contract')}`,
        'purposes.email_marketing.legal_basis: expected consent (GDPR Art. 6(1)(a)) or legitimate_interest (GDPR Art. 6(1)(f))',
      ],
      [
        'a bad purpose name',
        `purposes:\n${PURPOSE.replace('email_marketing:', 'Email Marketing:')}`,
        'purposes.Email Marketing: expected a lower-case name of letters, digits and _, starting with a letter',
      ],
      [
        'a bad retention',
        `purposes:\n${PURPOSE.replace('retention: 2y', 'retention: 2 years')}`,
        'purposes.email_marketing.retention: expected a period such as "90d", "6w", "13mo" or "2y": a whole number from 1 to 9999 ' +
          'followed by d (days), w (weeks), mo (months) or y (years)',
      ],
      [
        'an unknown key',
        `purposes:\n${PURPOSE}    retention_days: 730\n`,
        'purposes.email_marketing: Unrecognized key: "retention_days"',
      ],
      [
        'an unknown capability',
        `purposes:\n${PURPOSE.replace('[send_marketing_email]', '[send_sms]')}`,
        'purposes.email_marketing.allows.0: expected one of send_marketing_email, build_segments, behavioural_triggers, link_events_to_profile',
      ],
      [
        'a purpose that allows nothing',
        `purposes:\n${PURPOSE.replace('[send_marketing_email]', '[]')}`,
        'purposes.email_marketing.allows: expected at least one capability the purpose allows',
      ],
      ['no purposes', 'purposes: {}\n', 'purposes: expected at least one purpose'],
      [
        'descriptions without English',
        `purposes:\n${PURPOSE.replace('description: Our newsletter.', 'description: { pl: Nasz newsletter. }')}`,
        'purposes.email_marketing.description: expected an "en" (English) description among the languages',
      ],
      [
        'a bad language code',
        `purposes:\n${PURPOSE.replace('description: Our newsletter.', 'description: { en: Newsletter., PL: Newsletter. }')}`,
        'purposes.email_marketing.description.PL: expected a language code such as "en", "pl" or "pt-BR"',
      ],
      [
        'an empty description',
        `purposes:\n${PURPOSE.replace('description: Our newsletter.', 'description: ""')}`,
        'purposes.email_marketing.description: expected 1 to 2000 characters',
      ],
      [
        'a description that is neither text nor texts by language',
        `purposes:\n${PURPOSE.replace('description: Our newsletter.', 'description: 42')}`,
        'purposes.email_marketing.description: expected a description, or descriptions by language code (en, pl, …) including en',
      ],
      [
        'a TCF purpose out of range',
        `purposes:\n${PURPOSE}    tcf_purposes: [1, 12]\n`,
        'purposes.email_marketing.tcf_purposes.1: expected a TCF purpose number from 1 to 11',
      ],
      [
        'a notice naming an unknown purpose',
        `purposes:\n${PURPOSE}notices:\n${NOTICE.replace('[email_marketing]', '[email_marketing, profiling]')}`,
        'notices.0.purposes.1: unknown purpose "profiling"; the purposes declared in this file are email_marketing',
      ],
      [
        'a notice version declared twice',
        `purposes:\n${PURPOSE}notices:\n${NOTICE}${NOTICE.replace('Send me', 'Please send me')}`,
        'notices.1.version: notice "form" version 1 is already declared at notices.0; give a changed text a new version',
      ],
      [
        'a notice version below 1',
        `purposes:\n${PURPOSE}notices:\n${NOTICE.replace('version: 1', 'version: 0')}`,
        'notices.0.version: expected a whole number from 1',
      ],
      [
        'a Segment category mapped to two purposes',
        `purposes:\n${PURPOSE}    segment_categories: [Marketing]\n` +
          '  profiling:\n    description: Segments.\n    legal_basis: consent\n    allows: [build_segments]\n    retention: 13mo\n' +
          '    segment_categories: [marketing]\n',
        'purposes.profiling.segment_categories.0: Segment category "marketing" already maps to purpose "email_marketing"; ' +
          'a category can map to one purpose only',
      ],
    ])('%s', (_, text, expected) => {
      const file = write(text);
      const err = errorOf(file);
      expect(err).toBeInstanceOf(AppError);
      expect(err.code).toBe('CONFIG_INVALID');
      expect(err.message).toBe(`${file}: ${expected}`);
    });

    it('reports every problem, joined by "; "', () => {
      const file = write(`purposes:\n${PURPOSE.replace('consent', 'contract').replace('2y', '2')}`);
      expect(messageOf(file).split('; ')).toEqual([
        expect.stringMatching(new RegExp(`^${escape(file)}: purposes\\.email_marketing\\.legal_basis: `)),
        expect.stringMatching(new RegExp(`^${escape(file)}: purposes\\.email_marketing\\.retention: `)),
      ]);
    });

    it('reports a YAML syntax error with its line and column', () => {
      const file = write(`purposes:\n  email_marketing:\n    allows: [send_marketing_email\n    retention: 2y\n`);
      // The unclosed `[` on line 3 runs into line 4, where yaml notices it.
      expect(messageOf(file)).toMatch(new RegExp(`^${escape(file)}:4:5: .*end with a \\]`));
      expect(errorOf(file).code).toBe('CONFIG_INVALID');
    });
  });

  describe('catalog', () => {
    const catalog = new PurposeCatalog(DEFAULT_PURPOSES_FILE);

    it('finds the purposes providing a capability, in file order', () => {
      expect(catalog.providing('send_marketing_email').map((p) => p.name)).toEqual(['email_marketing']);
      expect(catalog.providing('build_segments').map((p) => p.name)).toEqual(['profiling']);
      expect(catalog.providing('link_events_to_profile').map((p) => p.name)).toEqual(['analytics']);
      const two = new PurposeCatalog(
        PurposesFile.parse({
          purposes: {
            b: { description: 'b', legal_basis: 'consent', allows: ['build_segments'], retention: '1y' },
            a: { description: 'a', legal_basis: 'consent', allows: ['build_segments', 'behavioural_triggers'], retention: '1y' },
          },
        }),
      );
      expect(two.names).toEqual(['b', 'a']);
      expect(two.providing('build_segments').map((p) => p.name)).toEqual(['b', 'a']);
      expect(two.providing('send_marketing_email')).toEqual([]);
    });

    it('describes a purpose, with English always present', () => {
      const purpose = catalog.get('profiling');
      expect(purpose?.legalBasis).toBe('consent');
      expect(purpose?.allows).toEqual(new Set(['build_segments', 'behavioural_triggers']));
      expect(purpose?.tcfPurposes).toEqual([3, 4, 5, 6]);
      expect(Object.keys(purpose?.description ?? {})).toEqual(['en', 'pl']);
      expect(catalog.get('nope')).toBeUndefined();
      expect(catalog.all().map((p) => p.name)).toEqual(['email_marketing', 'profiling', 'analytics']);
      const plain = new PurposeCatalog(
        PurposesFile.parse({ purposes: { p: { description: 'Plain.', legal_basis: 'consent', allows: ['build_segments'], retention: '1y' } } }),
      );
      expect(plain.get('p')?.description).toEqual({ en: 'Plain.' });
    });

    it.each([
      ['90d', 90],
      ['6w', 42],
      ['13mo', 390],
      ['2y', 730],
      ['9999d', 9999],
    ])('counts retention %s as %i days', (retention, days) => {
      const file = PurposesFile.parse({ purposes: { p: { description: 'x', legal_basis: 'consent', allows: ['build_segments'], retention } } });
      expect(new PurposeCatalog(file).get('p')).toMatchObject({ retention, retentionDays: days });
    });

    it('finds notices by id and version, hashing the exact text', () => {
      const notice = catalog.notice('newsletter_form', 1);
      expect(notice?.purposes).toEqual(['email_marketing']);
      expect(notice?.hash).toEqual(createHash('sha256').update(notice?.text ?? '', 'utf8').digest());
      expect(notice?.hash).toHaveLength(32);
      expect(catalog.notice('newsletter_form', 2)).toBeUndefined();
      expect(catalog.notice('nope', 1)).toBeUndefined();
      expect(catalog.hasNotice('cookie_banner')).toBe(true);
      expect(catalog.hasNotice('nope')).toBe(false);
      expect(catalog.notice('account_settings', 1)?.purposes).toEqual(['email_marketing', 'profiling', 'analytics']);
    });

    it('lists notice versions in ascending order', () => {
      const file = PurposesFile.parse({
        purposes: { p: { description: 'x', legal_basis: 'consent', allows: ['build_segments'], retention: '1y' } },
        notices: [
          { id: 'form', version: 3, text: 'Zgoda – wersja 3', purposes: ['p'] },
          { id: 'form', version: 1, text: 'v1', purposes: ['p'] },
          { id: 'form', version: 2, text: 'v2', purposes: ['p'] },
        ],
      });
      const versions = new PurposeCatalog(file);
      expect(versions.noticeVersions('form')).toEqual([1, 2, 3]);
      expect(versions.noticeVersions('nope')).toEqual([]);
      expect(versions.notice('form', 3)?.hash.toString('hex')).toBe(createHash('sha256').update(Buffer.from('Zgoda – wersja 3', 'utf8')).digest('hex'));
    });

    it('maps Segment consent categories to purposes, ignoring case', () => {
      expect(catalog.purposeForCategory('Marketing')).toBe('email_marketing');
      expect(catalog.purposeForCategory('email')).toBe('email_marketing');
      expect(catalog.purposeForCategory('ADVERTISING')).toBe('profiling');
      expect(catalog.purposeForCategory('personalization')).toBe('profiling');
      expect(catalog.purposeForCategory('Analytics')).toBe('analytics');
      expect(catalog.purposeForCategory('Profiling')).toBe('profiling');
      expect(catalog.purposeForCategory('email_marketing')).toBe('email_marketing');
      expect(catalog.purposeForCategory('Functional')).toBeUndefined();
      expect(catalog.purposeForCategory('')).toBeUndefined();
    });
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

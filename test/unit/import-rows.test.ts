import { importConsent } from '../../engine/import/consent-evidence';
import { parseCsv } from '../../engine/import/csv';
import { checkHeader, checkRecord } from '../../engine/import/csv-rows';
import { importMessageId } from '../../engine/import/events';
import { checkPerson } from '../../engine/import/person';
import { DEFAULT_PROPERTIES_FILE, PropertiesPolicy } from '../../engine/privacy/properties-policy';
import { shippedCatalog } from '../support/rules';

const policy = new PropertiesPolicy(DEFAULT_PROPERTIES_FILE);

function rows(text: string) {
  const [header, ...records] = parseCsv(text);
  const checked = checkHeader(policy, header);
  if (!checked.ok) throw new Error(checked.message);
  return records.map((r) => checkRecord(policy, checked.columns, r));
}

describe('import rows: the header and each person', () => {
  it('takes a header of identifiers and traits rules/properties.yaml keeps, and refuses the file otherwise', () => {
    expect(checkHeader(policy, parseCsv('email, userId ,firstName,plan,country')[0])).toEqual({ ok: true, columns: ['email', 'userId', 'firstName', 'plan', 'country'] });
    const unknown = checkHeader(policy, parseCsv('email,plan,favouriteColour,shoe size')[0]);
    expect(unknown).toEqual({ ok: false, message: expect.stringContaining('columns "favouriteColour", "shoe size" are neither an identifier (email, userId) nor a trait') });
    expect(checkHeader(policy, parseCsv('plan,country')[0])).toEqual({ ok: false, message: 'line 1 (the header): expected a column email or userId, naming who each row is' });
    expect(checkHeader(policy, parseCsv('email,email')[0])).toEqual({ ok: false, message: 'line 1 (the header): column "email" appears twice' });
    expect(checkHeader(policy, parseCsv('email,,plan')[0])).toEqual({ ok: false, message: 'line 1 (the header): column 2 has no name' });
    expect(checkHeader(policy, undefined)).toMatchObject({ ok: false, message: expect.stringContaining('the file is empty') });
    // A header that names a person (an address pasted as a column) is not echoed whole.
    expect(checkHeader(policy, parseCsv('email,jan@example.com')[0])).toEqual({ ok: false, message: expect.stringContaining('"[redacted]"') });
  });

  it('checks each row and names the line and the column of what is wrong, never its value', () => {
    const checked = rows(
      [
        'email,userId,firstName,plan',
        ' ann@example.com ,,Ann,pro',
        ',u-2,,',
        'Ann <ann@example.com>,,,',
        'bob@example.com,,"Bob\tTab",',
        ',,Nobody,pro',
        'carl@example.com,,Carl',
        'dora@example.com,,Dora,p"ro',
        `eve@example.com,,${'e'.repeat(1001)},`,
        'f\ufffdx@example.com,,,',
      ].join('\n'),
    );
    expect(checked[0]).toEqual({ ok: true, line: 2, person: { email: 'ann@example.com', traits: { firstName: 'Ann', plan: 'pro' } } });
    expect(checked[1]).toEqual({ ok: true, line: 3, person: { userId: 'u-2', traits: {} } });
    expect(checked.slice(2).map((c) => (c.ok ? c : [c.line, c.column ?? null, c.message]))).toEqual([
      [4, 'email', expect.stringContaining('expected one plain email address local@domain')],
      [5, 'firstName', expect.stringContaining('control characters')],
      [6, 'email', 'expected an email or a userId: who this person is'],
      [7, null, 'expected 4 fields as in the header, found 3'],
      [8, null, expect.stringContaining('a quote inside the unquoted field 4')],
      [9, 'firstName', 'expected at most 1000 characters'],
      [10, 'email', 'not valid UTF-8 text (save the file as CSV UTF-8)'],
    ]);
    expect(JSON.stringify(checked)).not.toMatch(/ann@example\.com>|Bob|Nobody|eeee/);
  });

  it('keeps trait checks for the admin API: identifiers are not traits, unknown traits are named', () => {
    expect(checkPerson(policy, { email: 'a@example.com', traits: { email: 'b@example.com' } })).toEqual({ ok: false, field: 'traits.email', message: 'give email as its own field, not as a trait' });
    expect(checkPerson(policy, { userId: 'u', traits: { shoeSize: 44 } })).toMatchObject({ ok: false, field: 'traits.shoeSize' });
    expect(checkPerson(policy, { userId: '   ', traits: {} })).toMatchObject({ ok: false, field: 'userId' });
    expect(checkPerson(policy, { userId: 'u', traits: { plan: 'pro', createdAt: 1_700_000_000, country: 'PL' } })).toMatchObject({ ok: true });
  });

  it('gives a row the same messageId on every import, and another when its content, source or consent changes', () => {
    const key = Buffer.alloc(32, 7);
    const person = { email: 'ann@example.com', traits: { plan: 'pro', firstName: 'Ann' } };
    const id = importMessageId(key, 'import:crm', undefined, person);
    expect(importMessageId(key, 'import:crm', undefined, { email: 'ann@example.com', traits: { firstName: 'Ann', plan: 'pro' } })).toBe(id);
    expect(importMessageId(key, 'import:crm', undefined, { ...person, traits: { plan: 'team', firstName: 'Ann' } })).not.toBe(id);
    expect(importMessageId(key, 'import:other', undefined, person)).not.toBe(id);
    const consent = { grant: ['analytics'], withdraw: [], method: 'import' as const, sourceKind: 'import' as const, notice: { id: 'cookie_banner', version: 1, hash: '0'.repeat(64) } };
    expect(importMessageId(key, 'import:crm', consent, person)).not.toBe(id);
    expect(id).toMatch(/^import-[A-Za-z0-9_-]{22}$/);
    expect(id).not.toContain('ann');
  });
});

describe('--consent PURPOSE:NOTICE@VERSION', () => {
  const catalog = shippedCatalog();

  it('grants declared purposes under a notice that describes them, recorded with method import', () => {
    const checked = importConsent(catalog, 'analytics,profiling:cookie_banner@1');
    expect(checked).toMatchObject({ ok: true, change: { grant: ['analytics', 'profiling'], withdraw: [], method: 'import', sourceKind: 'import', notice: { id: 'cookie_banner', version: 1 } } });
    if (checked.ok) expect(checked.change.notice?.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses what the ledger could not prove, each with what to do', () => {
    const message = (spec: string) => {
      const checked = importConsent(catalog, spec);
      return checked.ok ? 'accepted' : checked.message;
    };
    expect(message('analytics')).toContain('expected PURPOSE:NOTICE@VERSION');
    expect(message('Analytics:cookie_banner@1')).toContain('is not a purpose name');
    expect(message('nosuch:cookie_banner@1')).toContain('unknown purpose "nosuch"');
    expect(message('analytics:cookie_banner@9')).toBe('--consent: notice "cookie_banner" has no version 9; declared versions: 1, 2');
    expect(message('analytics:nosuch@1')).toContain('unknown notice "nosuch"');
    expect(message('analytics:newsletter_form@1')).toContain('does not describe analytics');
    // Double opt-in is proven by the person's click in their mailbox: no file can stand in for it.
    expect(message('email_marketing:newsletter_form@1')).toContain('email_marketing is granted only by double opt-in');
  });
});

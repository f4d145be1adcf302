import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { loadRuleSet } from '../../engine/rules/load';
import type { RuleSet } from '../../engine/rules/rule-set';
import { tempDir } from '../support/config';
import { SHIPPED_RULES_DIR } from '../support/rules';

/** A copy of the shipped rules/ with some files replaced (a string) or removed (null). */
function rulesDir(files: Record<string, string | null> = {}, base: string | null = SHIPPED_RULES_DIR): string {
  const dir = tempDir('cf-rules');
  if (base) fs.cpSync(base, dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) {
    const target = path.join(dir, file);
    if (text === null) fs.rmSync(target, { force: true });
    else {
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, text);
    }
  }
  return dir;
}

function problems(dir: string): string[] {
  const loaded = loadRuleSet(dir);
  if (loaded.ok) return [];
  return loaded.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`);
}

function ruleSet(dir: string): RuleSet {
  const loaded = loadRuleSet(dir);
  if (!loaded.ok) throw new Error(loaded.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`).join('\n'));
  return loaded.ruleSet;
}

const lines = (...text: string[]) => `${text.join('\n')}\n`;

const segment = (id: string, ...conditions: string[]) => lines(`id: ${id}`, `name: ${id}`, 'conditions:', ...conditions);

/** A valid campaign whose steps (indented list items) are given. */
const campaign = (id: string, ...steps: string[]) =>
  lines(`id: ${id}`, `name: ${id}`, 'purposes: [email_marketing]', 'trigger:', '  segment_entered: newsletter_subscribers', 'steps:', ...steps);

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

describe('loadRuleSet: the shipped rules', () => {
  it('loads every example file, with versions from the file contents', () => {
    const set = ruleSet(SHIPPED_RULES_DIR);
    expect(set.dir).toBe(SHIPPED_RULES_DIR);
    expect(set.purposes.names).toEqual(['email_marketing', 'profiling', 'analytics']);
    expect([...set.segments.keys()].sort()).toEqual(['cart_abandoners_contacted', 'dormant_readers', 'engaged_readers', 'newsletter_subscribers', 'vip']);
    expect([...set.campaigns.keys()].sort()).toEqual(['abandoned_cart', 'reengagement', 'weekly_digest', 'welcome_series']);
    expect(Object.fromEntries(set.templates)).toEqual({
      cart_last_call: 'templates/cart_last_call.html',
      cart_reminder: 'templates/cart_reminder.html',
      getting_started: 'templates/getting_started.html',
      tips: 'templates/tips.html',
      we_miss_you: 'templates/we_miss_you.html',
      weekly_digest: 'templates/weekly_digest.html',
      welcome: 'templates/welcome.html',
    });
    for (const trait of ['plan', 'timezone', 'reengaged']) expect(set.traitNames.has(trait)).toBe(true);
    expect(set.traitNames.has('email')).toBe(false);

    const welcome = set.campaigns.get('welcome_series');
    expect(welcome?.path).toBe('campaigns/welcome_series.yaml');
    expect(welcome?.hash).toBe(sha256(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'campaigns/welcome_series.yaml'))));
    expect(welcome?.file.limits.quiet_hours).toEqual({ from: '21:00', to: '08:00', timezone: 'Europe/Warsaw' });
    expect(set.segments.get('cart_abandoners_contacted')?.file.manual).toBe(true);

    // The version is the hash of every file's path and hash: same files, same version; one byte, another.
    const files = [...walk(SHIPPED_RULES_DIR)].filter((f) => /^(purposes|properties)\.yaml$|^(segments|campaigns|templates)\//.test(f));
    const expected = sha256(
      files
        .map((f) => `${f}\0${sha256(fs.readFileSync(path.join(SHIPPED_RULES_DIR, f)))}`)
        .sort()
        .join('\n'),
    );
    expect(set.version).toBe(expected);
    expect(ruleSet(rulesDir()).version).toBe(set.version);
    const tips = fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'templates/tips.html'), 'utf8');
    expect(ruleSet(rulesDir({ 'templates/tips.html': `${tips}<p>changed</p>\n` })).version).not.toBe(set.version);
  });

  it('starts each example with its JSON Schema line', () => {
    for (const file of walk(SHIPPED_RULES_DIR)) {
      const kind = /^(segment|campaign)s\/.*\.yaml$/.exec(file)?.[1];
      if (!kind) continue;
      const first = fs.readFileSync(path.join(SHIPPED_RULES_DIR, file), 'utf8').split('\n')[0];
      expect(`${file}: ${first}`).toBe(`${file}: # yaml-language-server: $schema=../../schemas/json/${kind}.schema.json`);
    }
  });

  it('uses the built-in purposes and properties when those files are missing, and JSON files as well as YAML', () => {
    const dir = rulesDir(
      {
        'segments/subscribers.json': JSON.stringify({ id: 'subscribers', name: 'Subscribers', conditions: { consent: 'email_marketing' } }),
        'segments/paying.yml': segment('paying', '  trait: plan', '  equals: pro'),
      },
      null,
    );
    const set = ruleSet(dir);
    expect(set.purposes.names).toEqual(['email_marketing', 'profiling', 'analytics']);
    expect([...set.segments.keys()]).toEqual(['paying', 'subscribers']);
    expect(set.campaigns.size).toBe(0);
    expect(set.traitNames.has('plan')).toBe(true);
    // Not a directory at all: the same defaults, nothing else (the CLI refuses a missing DIR itself).
    expect(ruleSet(path.join(dir, 'missing')).segments.size).toBe(0);
  });
});

describe('loadRuleSet: problems, located in the source', () => {
  it('names an unknown key and the keys allowed there, at the key', () => {
    const dir = rulesDir({
      'segments/vip.yaml': segment('vip', '  all:', '    - trait: plan', '      eqals: pro', '    - in_segmnt: newsletter_subscribers'),
      'campaigns/welcome_series.yaml': campaign('welcome_series', '  - send:', '      templat: welcome', '  - wait: 1d', '  - sned: {template: tips}'),
    });
    expect(problems(dir)).toEqual([
      'campaigns/welcome_series.yaml:8:7 unrecognized key "templat"; allowed: template',
      'campaigns/welcome_series.yaml:10:5 unrecognized key "sned"; expected a step: send, wait, wait_until, branch, set_trait, add_to_segment, remove_from_segment or end',
      'segments/vip.yaml:6:7 unrecognized key "eqals"; allowed: trait, equals, not_equals, in, not_in, exists, gt, gte, lt, lte, contains',
      'segments/vip.yaml:7:7 unrecognized key "in_segmnt"; expected a condition: all, any, not, trait, consent, in_segment, events or last_seen',
    ]);
  });

  it('reports a bad duration, a bad value and a missing key with the allowed values', () => {
    const dir = rulesDir({
      'campaigns/welcome_series.yaml': campaign(
        'welcome_series',
        '  - wait: 2 days',
        '  - wait_until:',
        '      event: {name: Article Read}',
        '      timeout: 1d',
        '      on_timeout: maybe',
        '  - send: {template: welcome}',
      ),
      'segments/engaged_readers.yaml': lines('id: engaged_readers', 'conditions:', '  events:', '    name: Article Read', '    at_least: 3', '    within: 2mo'),
    });
    expect(problems(dir)).toEqual([
      'campaigns/welcome_series.yaml:7:11 expected a duration: a whole number from 1 followed by s, m, h, d or w, e.g. "30m", "2h", "14d", "2w"',
      'campaigns/welcome_series.yaml:11:19 expected one of: continue, exit',
      'segments/engaged_readers.yaml:1:1 missing key "name"',
      'segments/engaged_readers.yaml:6:13 expected a duration: a whole number from 1 followed by s, m, h, d or w, e.g. "30m", "2h", "14d", "2w"',
    ]);
  });

  it('keeps the line and column of a YAML syntax error', () => {
    const dir = rulesDir({
      'campaigns/welcome_series.yaml': lines('id: welcome_series', 'name: Welcome', 'steps:', '  - send: {template: welcome', '  - wait: 1d'),
      'segments/vip.yaml': lines('id: vip', 'name: VIP', 'name: again', 'manual: true'),
    });
    expect(problems(dir)).toEqual([
      'campaigns/welcome_series.yaml:5:3 Flow map in block collection must be sufficiently indented and end with a }',
      'segments/vip.yaml:3:1 Map keys must be unique',
    ]);
  });

  it('reports an empty file and a file that is not a mapping', () => {
    const dir = rulesDir({ 'segments/vip.yaml': '# nothing yet\n', 'campaigns/weekly_digest.yaml': '- id: weekly_digest\n' });
    expect(problems(dir)).toEqual(['campaigns/weekly_digest.yaml:1:1 expected object, received array', 'segments/vip.yaml:1:1 the file is empty']);
  });

  it('reports a reference to a missing template, at the template name', () => {
    const dir = rulesDir({ 'campaigns/weekly_digest.yaml': campaign('weekly_digest', '  - send:', '      template: weekly_digset') });
    expect(problems(dir)).toEqual([
      'campaigns/weekly_digest.yaml:8:17 unknown template "weekly_digset": there is no templates/weekly_digset.*; templates: cart_last_call, cart_reminder, getting_started, tips, we_miss_you, weekly_digest, welcome',
    ]);
  });

  it('reports a file in templates/ that is not a template', () => {
    const dir = rulesDir({ 'templates/welcome.htm': 'Welcome!\n' });
    expect(problems(dir)).toEqual([
      'templates/welcome.htm:1:1 not a template: templates are <name>.html (with an optional <name>.txt), layouts and partials _<name>.html or _<name>.txt',
    ]);
  });

  it('reports a cycle between segments, once, with its path', () => {
    const dir = rulesDir({
      'segments/a.yaml': segment('a', '  all:', '    - consent: email_marketing', '    - in_segment: b'),
      'segments/b.yaml': segment('b', '  not:', '    in_segment: c'),
      'segments/c.yaml': segment('c', '  any:', '    - in_segment: a', '    - in_segment: vip'),
      'segments/self.yaml': segment('self', '  in_segment: self'),
    });
    expect(problems(dir)).toEqual([
      'segments/a.yaml:6:19 segments form a cycle through in_segment: a → b → c → a',
      'segments/self.yaml:4:15 segments form a cycle through in_segment: self → self',
    ]);
  });

  it('refuses personal traits, which live only in the vault, and traits profiles do not keep', () => {
    const dir = rulesDir({
      'segments/vip.yaml': segment('vip', '  any:', '    - trait: email', '      exists: true', '    - trait: plann', '      equals: pro'),
      'campaigns/reengagement.yaml': campaign('reengagement', '  - set_trait: {name: firstName, value: Ann}', '  - set_trait: {name: reengaged, value: true}'),
    });
    expect(problems(dir)).toEqual([
      'campaigns/reengagement.yaml:7:23 trait "firstName" is personal data: it lives only in the encrypted vault, never on the profile, so rules cannot use it',
      'segments/vip.yaml:5:14 trait "email" is personal data: it lives only in the encrypted vault, never on the profile, so rules cannot use it',
      'segments/vip.yaml:7:14 unknown trait "plann": profiles keep only properties.yaml traits.allow: plan, company, industry, language, country, createdAt, timezone, reengaged',
    ]);
  });

  it('reports purposes not declared in purposes.yaml, in purposes and in consent conditions', () => {
    const dir = rulesDir({
      'segments/newsletter_subscribers.yaml': segment('newsletter_subscribers', '  consent: newsletter'),
      'campaigns/welcome_series.yaml': lines(
        'id: welcome_series',
        'name: Welcome',
        'purposes: [email_marketing, marketing]',
        'trigger: {segment_entered: newsletter_subscribers}',
        'exit:',
        '  condition: {consent: tracking}',
        'steps:',
        '  - send: {template: welcome}',
      ),
    });
    const declared = 'purposes.yaml declares: email_marketing, profiling, analytics';
    expect(problems(dir)).toEqual([
      `campaigns/welcome_series.yaml:3:29 unknown purpose "marketing"; ${declared}`,
      `campaigns/welcome_series.yaml:6:24 unknown purpose "tracking"; ${declared}`,
      `segments/newsletter_subscribers.yaml:4:12 unknown purpose "newsletter"; ${declared}`,
    ]);
  });

  it('reports steps that never run and a wait that waits for nothing', () => {
    const dir = rulesDir({
      'campaigns/welcome_series.yaml': campaign(
        'welcome_series',
        '  - branch:',
        '      if: {in_segment: engaged_readers}',
        '      then:',
        '        - end: true',
        '        - send: {template: tips}',
        '        - send: {template: tips}',
        '      else:',
        '        - wait: 1d',
        '  - send: {template: welcome}',
        '  - wait_until:',
        '      event: {name: Article Read}',
        '      timeout: 7d',
      ),
      // A wait at the end of a branch that is the last step waits for nothing either.
      'campaigns/weekly_digest.yaml': campaign(
        'weekly_digest',
        '  - send: {template: weekly_digest}',
        '  - branch:',
        '      if: {in_segment: vip}',
        '      then: [{wait: 1d}]',
      ),
    });
    expect(problems(dir)).toEqual([
      'campaigns/weekly_digest.yaml:10:14 nothing comes after this wait: the journey would wait for nothing; remove it or add the steps that follow it',
      'campaigns/welcome_series.yaml:11:11 unreachable: this step comes after "end: true" and never runs',
      'campaigns/welcome_series.yaml:16:5 nothing comes after this wait_until: the journey would wait for nothing; remove it or add the steps that follow it',
    ]);
  });

  it('reports ids that do not match their file name, duplicate ids and duplicate step ids', () => {
    const dir = rulesDir({
      'segments/vip2.yaml': lines('id: vip', 'name: VIP again', 'manual: true'),
      'campaigns/welcome.yaml': campaign('welcome_series', '  - {id: hello, send: {template: welcome}}', '  - {id: hello, wait: 1d}', '  - send: {template: tips}'),
    });
    expect(problems(dir)).toEqual([
      'campaigns/welcome.yaml:1:5 id "welcome_series" must equal the file name "welcome" (campaigns/<id>.yaml)',
      'campaigns/welcome.yaml:1:5 duplicate campaign id "welcome_series": also in campaigns/welcome_series.yaml',
      'campaigns/welcome.yaml:8:10 duplicate step id "hello"',
      'segments/vip2.yaml:1:5 id "vip" must equal the file name "vip2" (segments/<id>.yaml)',
      'segments/vip2.yaml:1:5 duplicate segment id "vip": also in segments/vip.yaml',
    ]);
  });

  it('validates cron expressions of broadcasts with cron-parser, five fields', () => {
    const broadcast = (cron: string) =>
      lines('id: weekly_digest', 'name: Digest', 'purposes: [email_marketing]', 'trigger:', `  schedule: {cron: "${cron}", timezone: Europe/Warsaw}`, '  segment: newsletter_subscribers', 'steps:', '  - send: {template: weekly_digest}');
    expect(problems(rulesDir({ 'campaigns/weekly_digest.yaml': broadcast('0 9 * * 8') }))).toEqual([
      'campaigns/weekly_digest.yaml:5:20 invalid cron expression "0 9 * * 8": Constraint error, got value 8 expected range 0-7',
    ]);
    expect(problems(rulesDir({ 'campaigns/weekly_digest.yaml': broadcast('0 0 9 * * 1') }))).toEqual([
      'campaigns/weekly_digest.yaml:5:20 invalid cron expression "0 0 9 * * 1": expected 5 fields (minute hour day-of-month month day-of-week), e.g. "0 9 * * 1", or one of @hourly, @daily, @weekly, @monthly, @yearly',
    ]);
    expect(problems(rulesDir({ 'campaigns/weekly_digest.yaml': broadcast('@weekly') }))).toEqual([]);
  });

  it('checks every segment reference, and that steps change only manual segments', () => {
    const dir = rulesDir({
      'campaigns/abandoned_cart.yaml': lines(
        'id: abandoned_cart',
        'name: Cart',
        'purposes: [email_marketing]',
        'trigger: {segment_left: carts}',
        'conditions: {in_segment: shoppers}',
        'steps:',
        '  - add_to_segment: cart_abandoners_contacted',
        '  - add_to_segment: vip',
        '  - remove_from_segment: contacted',
        '  - send: {template: cart_reminder}',
      ),
      'campaigns/weekly_digest.yaml': lines(
        'id: weekly_digest',
        'name: Digest',
        'purposes: [email_marketing]',
        'trigger:',
        '  schedule: {cron: "0 9 * * 1"}',
        '  segment: readers',
        'steps:',
        '  - send: {template: weekly_digest}',
      ),
      // Entering or leaving a manual segment is a fine trigger.
      'campaigns/welcome_series.yaml': lines(
        'id: welcome_series',
        'name: Welcome',
        'purposes: [email_marketing]',
        'trigger: {segment_entered: cart_abandoners_contacted}',
        'steps: [{send: {template: welcome}}]',
      ),
    });
    expect(problems(dir)).toEqual([
      'campaigns/abandoned_cart.yaml:4:25 unknown segment "carts": there is no segments/carts.yaml',
      'campaigns/abandoned_cart.yaml:5:26 unknown segment "shoppers": there is no segments/shoppers.yaml',
      'campaigns/abandoned_cart.yaml:8:21 segment "vip" is computed from its conditions; add_to_segment needs a manual segment (manual: true)',
      'campaigns/abandoned_cart.yaml:9:26 unknown segment "contacted": there is no segments/contacted.yaml',
      'campaigns/weekly_digest.yaml:6:12 unknown segment "readers": there is no segments/readers.yaml',
    ]);
  });

  it('does not report references to a segment whose own file has problems', () => {
    const dir = rulesDir({ 'segments/newsletter_subscribers.yaml': segment('newsletter_subscribers', '  consent: [email_marketing]') });
    expect(problems(dir)).toEqual(['segments/newsletter_subscribers.yaml:4:12 expected string, received array']);
  });

  it('reports the problems of purposes.yaml and properties.yaml in the same way', () => {
    const dir = rulesDir({
      'purposes.yaml': lines('purposes:', '  email_marketing:', '    description: Newsletter', '    legal_basis: consnt', '    allows: [send_marketing_email]', '    retention: 2y', '    extra: 1'),
      'properties.yaml': lines('traits:', '  allow: [plan, email]'),
    });
    expect(problems(dir)).toEqual([
      'properties.yaml:2:17 "email" is always personal data and stored only encrypted; list it in traits.pii, not traits.allow',
      'purposes.yaml:4:18 expected consent (GDPR Art. 6(1)(a)) or legitimate_interest (GDPR Art. 6(1)(f))',
      'purposes.yaml:7:5 unrecognized key "extra"; allowed: description, legal_basis, allows, retention, tcf_purposes, double_opt_in, segment_categories',
    ]);
  });

  it('locates problems in JSON files too, and collects every problem in one pass, sorted', () => {
    const dir = rulesDir({
      'campaigns/z.json': JSON.stringify({ id: 'z', name: 'Z', purposes: ['ads'], trigger: { segment_entered: 'vip' }, steps: [{ send: { template: 'nope' } }] }, null, 2),
      'segments/a.yaml': segment('a', '  in_segment: a'),
    });
    expect(problems(dir)).toEqual([
      'campaigns/z.json:5:5 unknown purpose "ads"; purposes.yaml declares: email_marketing, profiling, analytics',
      'campaigns/z.json:13:21 unknown template "nope": there is no templates/nope.*; templates: cart_last_call, cart_reminder, getting_started, tips, we_miss_you, weekly_digest, welcome',
      'segments/a.yaml:4:15 segments form a cycle through in_segment: a → a',
    ]);
  });
});

function* walk(dir: string, prefix = ''): Generator<string> {
  for (const entry of fs.readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* walk(dir, relative);
    else yield relative;
  }
}

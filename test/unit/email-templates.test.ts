import fs from 'node:fs';
import path from 'node:path';
import { Parser } from 'liquidjs';
import { DEFAULT_PROPERTIES_FILE } from '../../engine/privacy/properties-policy';
import { htmlToText } from '../../engine/email/html-to-text';
import { TemplateRenderError, TemplateSet, type TemplateVars } from '../../engine/email/templates';
import { loadRulesFile } from '../../engine/rules-files/load-rules-file';
import { PropertiesFile } from '../../schemas/properties-file';
import { tempDir } from '../support/config';
import { SHIPPED_RULES_DIR } from '../support/rules';

/** The traits templates may use: properties.yaml traits.allow without the personal ones. */
function shippedTraits(): Set<string> {
  const file = loadRulesFile(path.join(SHIPPED_RULES_DIR, 'properties.yaml'), PropertiesFile, DEFAULT_PROPERTIES_FILE);
  const pii = new Set(['email', 'phone', ...file.traits.pii]);
  return new Set(file.traits.allow.filter((name) => !pii.has(name)));
}

/** A rules directory holding only the given files under templates/. */
function templatesDir(files: Record<string, string>): string {
  const dir = tempDir('cf-templates');
  fs.mkdirSync(path.join(dir, 'templates'));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, 'templates', name), text);
  return dir;
}

const lines = (...text: string[]) => `${text.join('\n')}\n`;
const TRAITS = new Set(['plan', 'company']);

function load(dir: string, traits: ReadonlySet<string> = TRAITS): TemplateSet {
  const loaded = TemplateSet.load(dir, traits);
  if (!loaded.ok) throw new Error(loaded.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`).join('\n'));
  return loaded.templates;
}

function problems(files: Record<string, string>, traits: ReadonlySet<string> = TRAITS): string[] {
  const loaded = TemplateSet.load(templatesDir(files), traits);
  return loaded.ok ? [] : loaded.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`);
}

const vars = (over: Partial<TemplateVars> = {}): TemplateVars => ({
  first_name: 'Ann',
  traits: {},
  unsubscribe_url: 'https://mail.example.test/u/TOKEN?a=1&b=2',
  preferences_url: 'https://mail.example.test/p/PREFS',
  campaign: { id: 'welcome_series', name: 'Welcome series' },
  send_id: 'send-1',
  ...over,
});

const LAYOUT = lines('<html><body>{% block %}{% endblock %}', '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>');
const page = (subject: string, ...body: string[]) => lines('---', `subject: ${subject}`, '---', '{% layout "_layout.html" %}', ...body);

const SHIPPED = ['cart_last_call', 'cart_reminder', 'getting_started', 'tips', 'we_miss_you', 'weekly_digest', 'welcome'];

describe('the shipped templates', () => {
  const templates = load(SHIPPED_RULES_DIR, shippedTraits());

  it('load with no problem, layouts apart', () => {
    expect(templates.names()).toEqual(SHIPPED);
    expect(templates.has('welcome')).toBe(true);
    expect(templates.has('_layout')).toBe(false);
  });

  it.each(SHIPPED)('%s renders both parts, each with the unsubscribe and preferences links', async (name) => {
    const email = await templates.render(name, vars());
    expect(email.subject).not.toBe('');
    expect(email.subject).not.toMatch(/[\r\n]/);
    expect(email.preheader).toBeTruthy();
    // An attribute holds the URL escaped (&amp;); the text part holds it as it is.
    expect(email.html).toContain('href="https://mail.example.test/u/TOKEN?a=1&amp;b=2"');
    expect(email.html).toContain('href="https://mail.example.test/p/PREFS"');
    expect(email.text).toContain('Unsubscribe (https://mail.example.test/u/TOKEN?a=1&b=2)');
    expect(email.text).toContain('Email preferences (https://mail.example.test/p/PREFS)');
    expect(email.text).not.toMatch(/<[a-z/!]/i);
  });

  it('personalises the subject, with a fallback for people who gave no first name', async () => {
    expect((await templates.render('welcome', vars())).subject).toBe('Welcome, Ann!');
    expect((await templates.render('welcome', vars({ first_name: undefined }))).subject).toBe('Welcome, there!');
    const { first_name: _omitted, ...anonymous } = vars();
    expect((await templates.render('welcome', anonymous)).subject).toBe('Welcome, there!');
  });

  it('escapes a first name in the HTML part, and leaves it plain in the subject and the text part', async () => {
    const email = await templates.render('welcome', vars({ first_name: '<b>Ann</b>' }));
    expect(email.subject).toBe('Welcome, <b>Ann</b>!');
    expect(email.html).toContain('Welcome, &lt;b&gt;Ann&lt;/b&gt;!</h1>');
    expect(email.html).not.toContain('<b>Ann</b>');
    expect(email.text).toContain('Welcome, <b>Ann</b>!');
  });

  it('varies the copy with traits.plan, and only passes on allowed traits', async () => {
    const pro = await templates.render('tips', vars({ traits: { plan: 'pro' } }));
    const free = await templates.render('tips', vars({ traits: { plan: 'free', phone: '+48 512 345 678' } }));
    const none = await templates.render('tips', vars({ traits: {} }));
    expect(pro.text).toContain('As a Pro reader');
    expect(free.text).toContain('Upgrade to Pro');
    expect(none.text).toContain('Upgrade to Pro');
    expect(free.html).not.toContain('512 345');
  });

  it('keeps the preheader out of the text part and a line break out of the subject', async () => {
    const email = await templates.render('cart_reminder', vars({ first_name: 'Ann\r\nBcc: someone' }));
    expect(email.subject).toBe('Ann Bcc: someone, you left something in your cart');
    expect(email.html).toContain('Your cart is saved, pick up where you left off.</div>');
    expect(email.text).not.toContain('pick up where you left off.');
    expect(email.text.split('\n')[0]).toBe('You left something in your cart');
  });
});

describe('problems, each at its place', () => {
  it('reports front matter that is missing, unclosed, not YAML, without subject or with unknown keys', () => {
    expect(
      problems({
        '_layout.html': LAYOUT,
        'a.html': lines('<p>Hello</p>'),
        'b.html': lines('---', 'subject: Hi', '<p>Hello</p>'),
        'c.html': lines('---', 'subject: [Hi', '---', '{% layout "_layout.html" %}'),
        'd.html': lines('---', 'preheader: Read on', 'colour: red', '---', '{% layout "_layout.html" %}'),
        'e.html': lines('---', 'subject: {{ first_name }}', '---', '{% layout "_layout.html" %}'),
      }),
    ).toEqual([
      'templates/a.html:1:1 a template starts with front matter: a line ---, subject: "…" (and preheader: "…"), a line ---, then the HTML',
      'templates/b.html:1:1 the front matter is not closed: end it with a line ---',
      'templates/c.html:2:13 Flow sequence in block collection must be sufficiently indented and end with a ]',
      'templates/d.html:1:1 subject is required: the subject line, in Liquid',
      'templates/d.html:3:1 unknown key "colour": the front matter has subject and preheader',
      'templates/e.html:2:10 subject: expected text (quote it when it starts with {{ or {%)',
    ]);
  });

  it('reports Liquid syntax errors in the body, the subject and a layout, at their line and column', () => {
    expect(
      problems({
        '_layout.html': lines('<html>', '  {% if preheader %}', LAYOUT),
        'a.html': page('"Hi {{ first_name }"', '<p>Hello</p>'),
        'b.html': page('Hi', '<p>Hello</p>', '  <p>{{ first_name | shout }}</p>'),
        'c.html': page('Hi', '{% for x in (1..3) %}'),
      }),
    ).toEqual([
      'templates/_layout.html:2:3 tag {% if preheader %} not closed',
      'templates/a.html:2:14 output "{{ first_name }" not closed',
      'templates/b.html:6:6 undefined filter: shout',
      'templates/c.html:5:1 tag {% for x in (1..3) %} not closed',
    ]);
  });

  it('reports a variable outside the allow-list, naming the allowed ones, in the body, the subject and the layout (once)', () => {
    const found = problems({
      '_layout.html': lines('<html><body>{% block %}{% endblock %}', '<p>{{ email }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'),
      'a.html': page("'Hi {{ name }}'", '<p>{{ traits.phone }} {{ traits.plan }} {{ campaign.owner }}</p>'),
      'b.html': page('Hi', '<p>{{ traits[first_name] }}</p>', '{% assign greeting = "Hi" %}{{ greeting }} {{ first_name | upcase }}'),
    });
    const allowed =
      'templates may use only first_name, traits.<name>, unsubscribe_url, preferences_url, campaign.id, campaign.name, send_id, subject, preheader (traits: company, plan); no email address or other personal data';
    expect(found).toEqual([
      `templates/_layout.html:2:7 unknown variable "email": ${allowed}`,
      'templates/a.html:2:17 unknown variable "name": templates may use only first_name, traits.<name>, unsubscribe_url, preferences_url, campaign.id, campaign.name, send_id (traits: company, plan); no email address or other personal data',
      'templates/a.html:5:7 trait "phone" is not available to templates; traits templates may use (properties.yaml traits.allow): company, plan',
      'templates/a.html:5:44 campaign has only campaign.id and campaign.name',
      'templates/b.html:5:7 name the trait, e.g. traits.company; traits templates may use (properties.yaml traits.allow): company, plan',
    ]);
  });

  it('reports a layout or partial that does not exist, is not named literally, or is not a _ file', () => {
    expect(
      problems({
        '_layout.html': LAYOUT,
        'a.html': lines('---', 'subject: Hi', '---', '{% layout "_base.html" %}', '<p>{{ email }}</p>'),
        'b.html': page('Hi', '<p>{% render "_button.html" %}</p>'),
        'c.html': page('Hi', '{% render first_name %}'),
        'd.html': page('Hi', '{% render "a.html" %}'),
      }),
    ).toEqual([
      'templates/a.html:4:1 layout "_base.html" does not exist: there is no templates/_base.html; layouts and partials: _layout.html',
      // The template is still checked on its own meanwhile.
      'templates/a.html:5:7 unknown variable "email": templates may use only first_name, traits.<name>, unsubscribe_url, preferences_url, campaign.id, campaign.name, send_id, subject, preheader (traits: company, plan); no email address or other personal data',
      'templates/b.html:5:4 render "_button.html" does not exist: there is no templates/_button.html; layouts and partials: _layout.html',
      'templates/c.html:5:1 {% render %} needs the file name in quotes, e.g. {% render "_layout.html" %}',
      'templates/d.html:5:1 {% render "a.html" %}: layouts and partials are files whose names start with _',
    ]);
  });

  it('reports cycles of layouts and partials, the raw filter, a missing unsubscribe link, bad names and stray files', () => {
    expect(
      problems({
        '_layout.html': LAYOUT,
        '_a.html': '{% render "_b.html" %}',
        '_b.html': lines('', '{% render "_a.html" %}'),
        'a.html': page('Hi', '{% render "_a.html" %}'),
        'b.html': page('Hi', '<p>{{ first_name | raw }}</p>'),
        'c.html': lines('---', 'subject: Hi', '---', '<p>No way out</p>'),
        'c.txt': 'No way out either\n',
        'd.txt': '{{ unsubscribe_url }}\n',
        'Big.html': page('Hi'),
        'notes.md': '# notes\n',
      }),
    ).toEqual([
      'templates/_b.html:2:1 layouts and partials form a cycle: _a.html → _b.html → _a.html',
      'templates/b.html:5:4 the raw filter is not allowed: variables are HTML-escaped so that no value can change the message',
      'templates/Big.html:1:1 template name "Big" must be lowercase letters, digits, _ and - (starting with a letter or digit); files starting with _ are layouts and partials',
      'templates/c.html:1:1 the HTML part has no unsubscribe link: use {{ unsubscribe_url }} in it or in its layout',
      'templates/c.html:1:1 the text part (templates/c.txt) has no unsubscribe link: use {{ unsubscribe_url }} in it or in its layout',
      'templates/d.txt:1:1 a text part needs its template: there is no templates/d.html',
      'templates/notes.md:1:1 not a template: templates are <name>.html (with an optional <name>.txt), layouts and partials _<name>.html or _<name>.txt',
    ]);
  });

  it('checks traits against the allow-list it is given', () => {
    const files = { '_layout.html': LAYOUT, 'a.html': page('Hi', '{{ traits.plan }}') };
    expect(problems(files, new Set(['plan']))).toEqual([]);
    expect(problems(files, new Set())).toEqual([
      'templates/a.html:5:4 trait "plan" is not available to templates; traits templates may use (properties.yaml traits.allow): none',
    ]);
  });

  it('loads an empty set when there is no templates folder', () => {
    expect(load(tempDir('cf-no-templates')).names()).toEqual([]);
  });
});

describe('rendering', () => {
  it('throws on an undefined variable (strict variables), at its place in the file', async () => {
    const templates = load(
      templatesDir({ '_layout.html': LAYOUT, 'a.html': page('Hi', '<p>{{ traits.plan.tier.name }}</p>') }),
    );
    await expect(templates.render('a', vars({ traits: { plan: 'pro' } }))).rejects.toThrow(
      new TemplateRenderError('undefined variable: traits.plan.tier', 'templates/a.html', 5, 7),
    );
    // A message without its unsubscribe link must never go out.
    const noLink = vars({ traits: {} });
    delete (noLink as Partial<TemplateVars>).unsubscribe_url;
    await expect(templates.render('a', noLink)).rejects.toThrow(/^templates\/_layout\.html:2:16: undefined variable: unsubscribe_url$/);
    await expect(templates.render('nope', vars())).rejects.toThrow('unknown template "nope"; templates: a');
  });

  it('renders from memory: the files are read and parsed once, at load', async () => {
    const dir = templatesDir({
      '_layout.html': LAYOUT,
      '_button.html': '<a href="{{ url }}">{{ label }}</a>',
      'a.html': page('"Hi {{ first_name }}"', '{% render "_button.html", url: preferences_url, label: "Your preferences" %}'),
    });
    const templates = load(dir);
    fs.rmSync(dir, { recursive: true });
    const parse = jest.spyOn(Parser.prototype, 'parse');
    const email = await templates.render('a', vars());
    await templates.render('a', vars());
    expect(parse).not.toHaveBeenCalled();
    parse.mockRestore();
    expect(email.subject).toBe('Hi Ann');
    expect(email.html).toContain('<a href="https://mail.example.test/p/PREFS">Your preferences</a>');
    expect(email.text).toBe(
      'Your preferences (https://mail.example.test/p/PREFS)\n\nUnsubscribe (https://mail.example.test/u/TOKEN?a=1&b=2)',
    );
  });

  it('uses a text part when there is one, unescaped, with a text layout and the rendered subject', async () => {
    const templates = load(
      templatesDir({
        '_layout.html': LAYOUT,
        '_layout.txt': lines('{% block %}{% endblock %}', '--', 'Unsubscribe: {{ unsubscribe_url }}'),
        'a.html': page('"Hi {{ first_name }}"', '<p>Hello {{ first_name }}</p>'),
        'a.txt': lines('{% layout "_layout.txt" %}', '{{ subject }}', '', 'Hello {{ first_name }} & welcome.'),
      }),
    );
    const email = await templates.render('a', vars({ first_name: '<b>Ann</b>' }));
    expect(email.text).toBe('Hi <b>Ann</b>\n\nHello <b>Ann</b> & welcome.\n\n--\nUnsubscribe: https://mail.example.test/u/TOKEN?a=1&b=2');
    expect(email.html).toContain('<p>Hello &lt;b&gt;Ann&lt;/b&gt;</p>');
    expect(email.preheader).toBeUndefined();
  });
});

describe('htmlToText', () => {
  it('turns links into text (url), paragraphs and line breaks into new lines, lists into items', () => {
    const html = [
      '<!DOCTYPE html><html><head><title>T</title><style>p { color: red; }</style></head><body>',
      '<div style="display:none; max-height:0;">The preheader</div>',
      '<!-- a comment -->',
      '<h1>Hello,\n   Ann</h1>',
      '<p>First line<br>second line<br/>third &amp; last &mdash; &#8220;quoted&#8221; &#x2713;&nbsp;done</p>',
      '<p>Read <a href="https://example.com/a?x=1&amp;y=2"><strong>the article</strong></a>, or <a href="https://example.com/b">https://example.com/b</a>,',
      'write to <a href="mailto:team@example.com">team@example.com</a> or <a href="#top">go up</a>.</p>',
      '<ul><li>One</li> <li>Two</li></ul>',
      '<p>&lt;b&gt;not a tag&lt;/b&gt; &unknown;</p>',
      '</body></html>',
    ].join('\n');
    expect(htmlToText(html)).toBe(
      [
        'Hello, Ann',
        '',
        'First line',
        'second line',
        'third & last — “quoted” ✓ done',
        '',
        'Read the article (https://example.com/a?x=1&y=2), or https://example.com/b, write to team@example.com or go up.',
        '',
        '- One',
        '- Two',
        '',
        '<b>not a tag</b> &unknown;',
      ].join('\n'),
    );
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { Liquid, LiquidError, toValueSync, Value, type StaticAnalysis, type Template, type Token } from 'liquidjs';
import { isMap, isScalar, LineCounter, parseDocument, Scalar } from 'yaml';
import { z } from 'zod';

/**
 * The email templates in `rules/templates/`, in LiquidJS (the language Braze and Customer.io use):
 *
 * - `<name>.html`: YAML front matter (`subject:`, required, and `preheader:`, both Liquid) between
 *   `---` lines, then the HTML body in Liquid; every `{{ }}` in it is HTML-escaped.
 * - `<name>.txt` (optional): the text part in Liquid; without it, the text part is made from the HTML.
 * - `_<name>.html` / `_<name>.txt`: layouts (`{% layout "_layout.html" %}`) and partials
 *   (`{% render "_button.html", url: preferences_url %}`), never sent on their own.
 *
 * Templates see only the variables of TEMPLATE_VARIABLES: a template is marketing copy, not a way to
 * put a person's data into mail (GDPR Art. 5(1)(c), 25). Every file is parsed and checked once, at
 * load; rendering works from the parsed templates in memory and never reads a file.
 */

/** The variables a template may use; `traits.<name>` stands for every trait in properties.yaml traits.allow. */
export const TEMPLATE_VARIABLES: readonly string[] = Object.freeze([
  'first_name',
  'traits.<name>',
  'unsubscribe_url',
  'preferences_url',
  'campaign.id',
  'campaign.name',
  'send_id',
]);

/** Also usable in the HTML and text parts and in layouts: the rendered front matter. */
export const PART_VARIABLES: readonly string[] = Object.freeze(['subject', 'preheader']);

export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]*$/;

export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
  preheader?: string;
}

export interface TemplateProblem {
  /** Relative to the rules directory, e.g. `templates/welcome.html`. */
  file: string;
  line: number;
  column: number;
  message: string;
}

export interface TemplateVars {
  /** Absent when the person gave none: `{{ first_name | default: "there" }}`. */
  first_name?: string;
  /** Traits the person lacks are empty (nil) in templates; traits outside the allow-list are never passed on. */
  traits: Record<string, unknown>;
  unsubscribe_url: string;
  preferences_url: string;
  campaign: { id: string; name: string };
  send_id: string;
}

const quoteHint = 'quote it when it starts with {{ or {%';
export const TemplateFrontMatter = z.strictObject({
  subject: z
    .string({
      error: (issue) =>
        issue.input === undefined ? 'subject is required: the subject line, in Liquid' : issue.input === null ? 'subject is empty' : `expected text (${quoteHint})`,
    })
    .refine((s) => s.trim().length > 0, 'subject is empty'),
  preheader: z.string({ error: `expected text (${quoteHint})` }).optional(),
});
export type TemplateFrontMatter = z.infer<typeof TemplateFrontMatter>;

/** A render that failed, located in the template file; the same template and variables fail the same way. */
export class TemplateRenderError extends Error {
  override readonly name = 'TemplateRenderError';
  constructor(
    message: string,
    readonly file?: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(file ? `${file}:${line}:${column}: ${message}` : message);
  }
}

interface Parsed {
  readonly subject: Template[];
  readonly preheader?: Template[];
  readonly html: Template[];
  readonly text?: Template[];
  readonly name: string;
}

/** One piece of Liquid of a template (body, text part, subject, preheader), parsed on its own. */
interface Piece {
  readonly engine: Liquid;
  /** Its Liquid file name: `welcome.html`, `welcome.txt`, `welcome.html#subject`. */
  readonly name: string;
  readonly templates: Template[] | undefined;
  /** A body (HTML or text): it may use PART_VARIABLES. */
  readonly part: boolean;
  /** Which part, when it must carry an unsubscribe link. */
  readonly unsubscribe?: string;
}

interface PartFiles {
  front?: FrontMatter;
  html?: string;
  text?: string;
}

type LoadResult = { ok: true; templates: TemplateSet } | { ok: false; problems: TemplateProblem[] };

// A template runs for every recipient: a runaway loop must fail the send, not hold the worker.
const RENDER_LIMIT_MS = 2000;

export class TemplateSet {
  private constructor(
    private readonly templates: ReadonlyMap<string, Parsed>,
    private readonly html: Liquid,
    private readonly plain: Liquid,
    private readonly allowedTraits: readonly string[],
    private readonly origins: Origins,
  ) {}

  static load(rulesDir: string, allowedTraits: ReadonlySet<string>): LoadResult {
    return new Loader(rulesDir, allowedTraits).load((templates, html, plain, origins) =>
      new TemplateSet(templates, html, plain, [...allowedTraits], origins),
    );
  }

  has(name: string): boolean {
    return this.templates.has(name);
  }

  names(): string[] {
    return [...this.templates.keys()].sort();
  }

  async render(name: string, vars: TemplateVars): Promise<RenderedEmail> {
    const template = this.templates.get(name);
    if (!template) throw new TemplateRenderError(`unknown template "${name}"; templates: ${this.names().join(', ')}`);
    const globals = this.scope(vars);
    // A header cannot hold a line break (RFC 5322 §2.2): the subject and preheader are one line.
    const subject = oneLine(await this.run(this.plain, template.subject, globals));
    const preheader = template.preheader ? oneLine(await this.run(this.plain, template.preheader, globals)) : undefined;
    const parts = { ...globals, subject, preheader: preheader ?? null };
    const html = await this.run(this.html, template.html, parts);
    const text = template.text ? tidyText(await this.run(this.plain, template.text, parts)) : htmlToText(html);
    return { subject, html, text, ...(preheader ? { preheader } : {}) };
  }

  /**
   * The variables, as Liquid globals so partials rendered with `{% render %}` see them too. An
   * allowed trait the person lacks, or a missing first name, is nil rather than undefined: strict
   * variables are for mistakes, and a person without a plan is not one.
   */
  private scope(vars: TemplateVars): Record<string, unknown> {
    const traits: Record<string, unknown> = {};
    for (const trait of this.allowedTraits) traits[trait] = vars.traits?.[trait] ?? null;
    return {
      first_name: vars.first_name ?? null,
      traits,
      unsubscribe_url: vars.unsubscribe_url,
      preferences_url: vars.preferences_url,
      campaign: vars.campaign === undefined ? undefined : { id: vars.campaign.id, name: vars.campaign.name },
      send_id: vars.send_id,
    };
  }

  private async run(engine: Liquid, template: Template[], globals: Record<string, unknown>): Promise<string> {
    try {
      return String(await engine.render(template, {}, { globals }));
    } catch (err) {
      if (err instanceof LiquidError && err.token) {
        const at = this.origins.ofToken(err.token);
        throw new TemplateRenderError(liquidMessage(err), at.file, at.line, at.column);
      }
      throw new TemplateRenderError(err instanceof Error ? err.message : String(err));
    }
  }
}

/** Where line 1, column 1 of a piece of Liquid is in its file: bodies follow front matter, subjects sit in it. */
interface Origin {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

class Origins {
  private readonly byName = new Map<string, Origin>();
  private readonly byInput = new Map<string, string>();

  set(name: string, origin: Origin, input: string): void {
    this.byName.set(name, origin);
    if (!this.byInput.has(input)) this.byInput.set(input, name);
  }

  /** liquidjs leaves the file off some tokens (those of a failed lookup): their source text tells it. */
  ofToken(token: Token, fallback?: string): Omit<TemplateProblem, 'message'> {
    const [row = 1, col = 1] = token.getPosition();
    return this.locate(token.file ?? this.byInput.get(token.input) ?? fallback, row, col);
  }

  locate(liquidFile: string | undefined, row: number, col: number): Omit<TemplateProblem, 'message'> {
    const origin = (liquidFile && this.byName.get(liquidFile)) || { file: `templates/${liquidFile ?? '?'}`, line: 1, column: 1 };
    return { file: origin.file, line: origin.line + row - 1, column: row === 1 ? origin.column + col - 1 : col };
  }
}

/** liquidjs appends `, file:…, line:…, col:…` to its messages; the problem carries the position itself. */
function liquidMessage(err: LiquidError): string {
  return (err.originalError?.message ?? err.message).replace(/(, file:.*?)?, line:\d+, col:\d+$/s, '');
}

const PARTIAL_TAGS = new Set(['layout', 'render', 'include']);
const FRONT_KEYS = 'subject and preheader';

class Loader {
  private readonly problems: TemplateProblem[] = [];
  private readonly seen = new Set<string>();
  /** Liquid file name (as liquidjs knows it) → its text, for liquidjs's in-memory file system. */
  private readonly sources: Record<string, string> = {};
  private readonly origins = new Origins();
  private readonly parts = new Map<string, PartFiles>();
  private readonly partials: string[] = [];
  /** Liquid file → the layouts and partials it names, for the cycle check. */
  private readonly references = new Map<string, Array<{ target: string; file: string; row: number; col: number }>>();
  private readonly broken = new Set<string>();

  constructor(
    private readonly rulesDir: string,
    private readonly allowedTraits: ReadonlySet<string>,
  ) {}

  load(make: (templates: Map<string, Parsed>, html: Liquid, plain: Liquid, origins: Origins) => TemplateSet): LoadResult {
    this.readFiles();
    const options = {
      templates: this.sources,
      strictVariables: true,
      strictFilters: true,
      ownPropertyOnly: true,
      // Layouts and partials are parsed once, here, and kept: one cache entry per file is enough.
      cache: Object.keys(this.sources).length + 1,
      renderLimit: RENDER_LIMIT_MS,
    };
    const html = new Liquid({ ...options, outputEscape: 'escape' });
    const plain = new Liquid(options);

    for (const name of this.partials) this.parse(name, () => html.parseFileSync(name));
    const drafts = [...this.parts].map(([name, part]) => this.draft(name, part, html, plain));
    this.checkCycles();
    for (const draft of drafts) for (const piece of draft?.pieces ?? []) this.analyze(piece, draft?.file ?? '');
    const templates = new Map<string, Parsed>();
    for (const draft of drafts) if (draft?.parsed) templates.set(draft.parsed.name, draft.parsed);
    if (this.problems.length > 0) return { ok: false, problems: this.sorted() };
    // liquidjs caches a file per use (layout, partial): fill both engines' caches now, so that no
    // send parses anything.
    for (const engine of [html, plain]) {
      for (const name of this.partials) {
        toValueSync(engine._parseLayoutFile(name, true));
        toValueSync(engine._parsePartialFile(name, true));
      }
    }
    return { ok: true, templates: make(templates, html, plain, this.origins) };
  }

  private readFiles(): void {
    const dir = path.join(this.rulesDir, 'templates');
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.problem('templates', 1, 1, `cannot read the folder: ${(err as Error).message}`);
      return;
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isFile() || entry.name.startsWith('.')) continue;
      const { name: stem, ext } = path.parse(entry.name);
      const file = `templates/${entry.name}`;
      if (ext !== '.html' && ext !== '.txt') {
        this.problem(file, 1, 1, 'not a template: templates are <name>.html (with an optional <name>.txt), layouts and partials _<name>.html or _<name>.txt');
        continue;
      }
      let text: string;
      try {
        text = fs.readFileSync(path.join(dir, entry.name), 'utf8').replace(/^\uFEFF/, '');
      } catch (err) {
        this.problem(file, 1, 1, `cannot read the file: ${(err as Error).message}`);
        continue;
      }
      if (stem.startsWith('_')) {
        this.sources[entry.name] = text;
        this.origins.set(entry.name, { file, line: 1, column: 1 }, text);
        this.partials.push(entry.name);
        continue;
      }
      if (!TEMPLATE_NAME.test(stem)) {
        this.problem(file, 1, 1, `template name "${stem}" must be lowercase letters, digits, _ and - (starting with a letter or digit); files starting with _ are layouts and partials`);
        continue;
      }
      const part = this.parts.get(stem) ?? {};
      this.parts.set(stem, part);
      if (ext === '.txt') {
        this.sources[entry.name] = text;
        this.origins.set(entry.name, { file, line: 1, column: 1 }, text);
        part.text = entry.name;
        continue;
      }
      const front = this.frontMatter(file, entry.name, text);
      if (front) part.front = front;
      part.html = entry.name;
    }
  }

  /** Splits `---` YAML `---` from the body; the body keeps its place in the file for positions. */
  private frontMatter(file: string, name: string, text: string): FrontMatter | undefined {
    const lines = text.split('\n');
    if (lines[0]?.trimEnd() !== '---') {
      this.problem(file, 1, 1, `a template starts with front matter: a line ---, subject: "…" (and preheader: "…"), a line ---, then the HTML`);
      return undefined;
    }
    const end = lines.findIndex((line, i) => i > 0 && line.trimEnd() === '---');
    if (end < 0) {
      this.problem(file, 1, 1, 'the front matter is not closed: end it with a line ---');
      return undefined;
    }
    const body = lines.slice(end + 1).join('\n');
    this.sources[name] = body;
    this.origins.set(name, { file, line: end + 2, column: 1 }, body);

    const lineCounter = new LineCounter();
    const doc = parseDocument(lines.slice(1, end).join('\n'), { lineCounter, prettyErrors: false });
    // The YAML starts on the file's second line.
    const at = (offset: number) => {
      const { line, col } = lineCounter.linePos(offset);
      return { line: line + 1, column: col };
    };
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const { line, column } = at(e.pos[0]);
        this.problem(file, line, column, e.message.split('\n')[0] ?? e.message);
      }
      return undefined;
    }
    // Only scalars are wanted: anything else (`subject: {{ first_name }}` is a YAML map) stands in as
    // {} for the schema to refuse, rather than being converted (and warned about) by yaml.
    const contents = doc.contents;
    const data: unknown = isMap(contents)
      ? Object.fromEntries(contents.items.map((p) => [String(isScalar(p.key) ? p.key.value : p.key), p.value === null ? null : isScalar(p.value) ? p.value.value : {}]))
      : contents === null
        ? {}
        : isScalar(contents)
          ? contents.value
          : [];
    const nodeAt = (key: string) => {
      if (!isMap(doc.contents)) return undefined;
      const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === key);
      return pair;
    };
    const parsed = TemplateFrontMatter.safeParse(data);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) {
            const range = (nodeAt(key)?.key as Scalar | undefined)?.range;
            const { line, column } = range ? at(range[0]) : { line: 1, column: 1 };
            this.problem(file, line, column, `unknown key "${key}": the front matter has ${FRONT_KEYS}`);
          }
          continue;
        }
        const key = String(issue.path[0] ?? '');
        const pair = key ? nodeAt(key) : undefined;
        const range = ((pair?.value ?? pair?.key) as Scalar | undefined)?.range;
        const { line, column } = range ? at(range[0]) : { line: 1, column: 1 };
        this.problem(file, line, column, key && !issue.message.startsWith(key) ? `${key}: ${issue.message}` : issue.message);
      }
      return undefined;
    }
    // Exact for plain and quoted one-line strings; for block scalars (`>-`, `|`), the line they start on.
    const origin = (key: string): Origin => {
      const value = nodeAt(key)?.value;
      if (!isScalar(value) || !value.range) return { file, line: 2, column: 1 };
      const { line, column } = at(value.range[0]);
      const quoted = value.type === Scalar.QUOTE_DOUBLE || value.type === Scalar.QUOTE_SINGLE;
      const block = value.type === Scalar.BLOCK_FOLDED || value.type === Scalar.BLOCK_LITERAL;
      return block ? { file, line: line + 1, column: 1 } : { file, line, column: column + (quoted ? 1 : 0) };
    };
    return {
      subject: parsed.data.subject,
      subjectOrigin: origin('subject'),
      ...(parsed.data.preheader !== undefined ? { preheader: parsed.data.preheader, preheaderOrigin: origin('preheader') } : {}),
    };
  }

  /** Parses each piece of a template on its own, so that one mistake does not hide the others. */
  private draft(name: string, part: PartFiles, html: Liquid, plain: Liquid): { file: string; pieces: Piece[]; parsed?: Parsed } | undefined {
    if (!part.html) {
      if (part.text) this.problem(`templates/${part.text}`, 1, 1, `a text part needs its template: there is no templates/${name}.html`);
      return undefined;
    }
    const file = `templates/${part.html}`;
    const pieces: Piece[] = [];
    const piece = (engine: Liquid, liquidName: string, parse: () => Template[], role: Pick<Piece, 'part' | 'unsubscribe'>) => {
      const templates = this.parse(liquidName, parse);
      pieces.push({ engine, name: liquidName, templates, ...role });
      return templates;
    };
    const htmlName = part.html;
    const textName = part.text;
    // The body is in `sources` when the front matter could be split off, even if its YAML is wrong.
    const body = htmlName in this.sources ? piece(html, htmlName, () => html.parseFileSync(htmlName), { part: true, unsubscribe: 'HTML part' }) : undefined;
    const text = textName ? piece(plain, textName, () => plain.parseFileSync(textName), { part: true, unsubscribe: `text part (templates/${textName})` }) : undefined;
    const front = part.front;
    if (!front) return { file, pieces };
    // Each front matter string gets a Liquid file name of its own, so positions map back into the YAML.
    const frontPiece = (key: 'subject' | 'preheader', source: string, origin: Origin) => {
      const liquidName = `${htmlName}#${key}`;
      this.origins.set(liquidName, origin, source);
      return piece(plain, liquidName, () => plain.parse(source, liquidName), { part: false });
    };
    const subject = frontPiece('subject', front.subject, front.subjectOrigin);
    const preheader = front.preheader !== undefined && front.preheaderOrigin ? frontPiece('preheader', front.preheader, front.preheaderOrigin) : undefined;
    const complete = body && subject && (!textName || text) && (front.preheader === undefined || preheader);
    if (!complete) return { file, pieces };
    return { file, pieces, parsed: { name, subject, html: body, ...(preheader ? { preheader } : {}), ...(text ? { text } : {}) } };
  }

  /** Parses, reporting a syntax error at its place, and walks the tree for what analysis cannot see. */
  private parse(name: string, parse: () => Template[]): Template[] | undefined {
    try {
      const templates = parse();
      this.walk(templates, name);
      return templates;
    } catch (err) {
      this.broken.add(name);
      this.liquidProblem(err, name);
      return undefined;
    }
  }

  /**
   * Layouts and partials must be named literally (so they can be checked here, and analysed) and
   * exist; the raw filter is refused, since it would let a first name carry HTML into the message.
   */
  private walk(templates: readonly Template[], name: string): void {
    const refs = this.references.get(name) ?? [];
    this.references.set(name, refs);
    const visit = (template: Template): void => {
      const [row = 1, col = 1] = template.token.getPosition();
      const tagName = (template as { name?: unknown }).name;
      if (typeof tagName === 'string' && PARTIAL_TAGS.has(tagName)) {
        const target = template.partialScope?.()?.name;
        const args = String((template.token as { args?: unknown }).args ?? '').trim();
        const wrong =
          target === undefined
            ? args === 'none'
              ? undefined
              : `{% ${tagName} %} needs the file name in quotes, e.g. {% ${tagName} "_layout.html" %}`
            : !target.startsWith('_')
              ? `{% ${tagName} "${target}" %}: layouts and partials are files whose names start with _`
              : !(target in this.sources)
                ? `${tagName} "${target}" does not exist: there is no templates/${target}` +
                  (this.partials.length > 0 ? `; layouts and partials: ${this.partials.join(', ')}` : '')
                : undefined;
        if (wrong) {
          this.at(name, row, col, wrong);
          this.broken.add(name);
        } else if (target !== undefined) refs.push({ target, file: name, row, col });
      }
      for (const arg of template.arguments?.() ?? []) {
        if (arg instanceof Value && arg.filters.some((f) => f.name === 'raw')) {
          this.at(name, row, col, 'the raw filter is not allowed: variables are HTML-escaped so that no value can change the message');
        }
      }
      for (const child of children(template)) visit(child);
    };
    for (const template of templates) visit(template);
  }

  private reachesBroken(root: string): boolean {
    const seen = new Set<string>();
    const visit = (name: string): boolean => {
      if (seen.has(name)) return false;
      seen.add(name);
      if (this.broken.has(name)) return true;
      return (this.references.get(name) ?? []).some((ref) => visit(ref.target));
    };
    return visit(root);
  }

  private checkCycles(): void {
    const done = new Set<string>();
    const stack: string[] = [];
    const visit = (name: string): void => {
      if (done.has(name)) return;
      stack.push(name);
      for (const ref of this.references.get(name) ?? []) {
        const at = stack.indexOf(ref.target);
        if (at >= 0) {
          this.at(ref.file, ref.row, ref.col, `layouts and partials form a cycle: ${[...stack.slice(at), ref.target].join(' → ')}`);
          // liquidjs's analysis would follow the cycle for ever; so would rendering.
          this.broken.add(ref.file);
        }
        else visit(ref.target);
      }
      stack.pop();
      done.add(name);
    };
    for (const name of [...this.references.keys()].sort()) visit(name);
  }

  /**
   * Static analysis: every variable a piece uses, through its layout and partials, must be allowed.
   * A piece that reaches a broken or missing layout or partial is checked on its own meanwhile.
   */
  private analyze(piece: Piece, file: string): void {
    if (!piece.templates) return;
    const whole = !this.reachesBroken(piece.name);
    let globals: StaticAnalysis['globals'];
    try {
      globals = piece.engine.analyzeSync(piece.templates, { partials: whole }).globals;
    } catch (err) {
      this.liquidProblem(err, piece.name);
      return;
    }
    for (const variables of Object.values(globals)) {
      for (const variable of variables) {
        const message = this.disallowed(variable.toArray(), piece.part);
        if (message) this.at(variable.location.file ?? piece.name, variable.location.row, variable.location.col, message);
      }
    }
    if (piece.unsubscribe && whole && !('unsubscribe_url' in globals)) {
      // Objecting to direct marketing must be as easy as agreeing to it (GDPR Art. 7(3), 21(2)–(3)).
      this.problem(file, 1, 1, `the ${piece.unsubscribe} has no unsubscribe link: use {{ unsubscribe_url }} in it or in its layout`);
    }
  }

  private disallowed(segments: unknown[], part: boolean): string | undefined {
    const [root, key] = segments;
    const simple = ['first_name', 'unsubscribe_url', 'preferences_url', 'send_id', ...(part ? PART_VARIABLES : [])];
    if (typeof root === 'string' && simple.includes(root)) return undefined;
    const traits = [...this.allowedTraits].sort();
    if (root === 'campaign') {
      if (key === 'id' || key === 'name') return undefined;
      return `campaign has only campaign.id and campaign.name`;
    }
    if (root === 'traits') {
      if (typeof key === 'string' && this.allowedTraits.has(key)) return undefined;
      const allowed = `traits templates may use (properties.yaml traits.allow): ${traits.length > 0 ? traits.join(', ') : 'none'}`;
      if (typeof key === 'string') return `trait "${key}" is not available to templates; ${allowed}`;
      return `name the trait, e.g. traits.${traits[0] ?? 'plan'}; ${allowed}`;
    }
    const names = [...TEMPLATE_VARIABLES, ...(part ? PART_VARIABLES : [])].join(', ');
    const shown = segments.map((s) => (typeof s === 'string' || typeof s === 'number' ? String(s) : '[…]')).join('.');
    return `unknown variable "${shown}": templates may use only ${names} (traits: ${traits.join(', ') || 'none'}); no email address or other personal data`;
  }

  private liquidProblem(err: unknown, fallbackName: string): void {
    if (err instanceof LiquidError && err.token) {
      const where = this.origins.ofToken(err.token, fallbackName);
      this.problem(where.file, where.line, where.column, liquidMessage(err));
    } else {
      this.at(fallbackName, 1, 1, err instanceof Error ? err.message : String(err));
    }
  }

  private at(liquidFile: string, row: number, col: number, message: string): void {
    const where = this.origins.locate(liquidFile, row, col);
    this.problem(where.file, where.line, where.column, message);
  }

  private problem(file: string, line: number, column: number, message: string): void {
    // A layout used by every template would otherwise report its problem once per template.
    const key = `${file}\0${line}\0${column}\0${message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.problems.push({ file, line, column, message });
  }

  private sorted(): TemplateProblem[] {
    return [...this.problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  }
}

interface FrontMatter {
  readonly subject: string;
  readonly subjectOrigin: Origin;
  readonly preheader?: string;
  readonly preheaderOrigin?: Origin;
}

/** A tag's nested templates, without loading partials (liquidjs's children() is a generator). */
function children(template: Template): Template[] {
  return template.children ? toValueSync(template.children(false, true)) : [];
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

const ENTITIES: Record<string, string> = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', zwnj: '', zwj: '', shy: '',
  copy: '©', reg: '®', trade: '™', hellip: '…', mdash: '—', ndash: '–', middot: '·', bull: '•',
  lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”', laquo: '«', raquo: '»', euro: '€', rarr: '→', larr: '←',
};

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, code: string) => {
    if (code.startsWith('#')) {
      const point = code[1] === 'x' || code[1] === 'X' ? parseInt(code.slice(2), 16) : parseInt(code.slice(1), 10);
      return point > 0 && point <= 0x10ffff && (point < 0xd800 || point > 0xdfff) ? String.fromCodePoint(point) : whole;
    }
    return ENTITIES[code.toLowerCase()] ?? whole;
  });
}

const BLOCK = 'p|div|h[1-6]|ul|ol|table|blockquote|section|article|header|footer|main|nav|aside|address|figure|pre';

/**
 * The text part of an HTML message, for clients that show no HTML (and for spam filters that
 * compare both): paragraphs and headings become blank-line-separated, `<br>` a line break, links
 * `text (url)`, list items `- item`; head, styles and hidden elements (the preheader) are dropped.
 */
export function htmlToText(html: string): string {
  let s = html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(head|style|script|title)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<(\w+)\b[^>]*?(?:\shidden\b|style\s*=\s*["'][^"']*display\s*:\s*none)[^>]*>[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/\s+/g, ' ');
  s = s.replace(/<a\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1[^>]*>([\s\S]*?)<\/a\s*>/gi, (_whole, _q, href: string, inner: string) => {
    const label = inner.replace(/<[^>]*>/g, '').trim();
    const url = decodeEntities(href.trim());
    if (!url || url.startsWith('#')) return inner;
    const shown = decodeEntities(label);
    if (!shown) return href.trim();
    if (shown === url || `mailto:${shown}` === url) return inner;
    return `${inner} (${href.trim()})`;
  });
  s = s
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<li\b[^>]*>/gi, '\n- ')
    .replace(/<\/li\s*>/gi, '')
    .replace(/<hr\b[^>]*>/gi, '\n\n')
    .replace(new RegExp(`</?(?:${BLOCK})\\b[^>]*>`, 'gi'), '\n\n')
    .replace(/<\/?(?:tr)\b[^>]*>/gi, '\n')
    .replace(/<[^>]*>/g, '');
  return tidyText(decodeEntities(s));
}

/** Trims each line, keeps at most one blank line between paragraphs, ends with no blank lines. */
function tidyText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((line) => line.replace(/[ \t\u00a0]+/g, ' ').trim())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

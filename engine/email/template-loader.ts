import fs from 'node:fs';
import path from 'node:path';
import { Liquid, LiquidError, toValueSync, Value, type StaticAnalysis, type Template, type Token } from 'liquidjs';
import { PART_VARIABLES, TEMPLATE_NAME, TEMPLATE_VARIABLES, type TemplateProblem } from './template-format';
import { type FrontMatter, readFrontMatter } from './template-front-matter';
import { type Origin, Origins, liquidMessage } from './template-origins';
import type { TemplateSet } from './templates';

/**
 * Reading and checking rules/templates/ once, at load: front matter, Liquid syntax, layouts and
 * partials (and their cycles), and the variables each piece uses against the allow-list. Every
 * problem is located in its file. engine/email/templates.ts renders what this parsed.
 */

// A template runs for every recipient: a runaway loop must fail the send, not hold the worker.
const RENDER_LIMIT_MS = 2000;

export interface Parsed {
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


export type LoadResult = { ok: true; templates: TemplateSet } | { ok: false; problems: TemplateProblem[] };

const PARTIAL_TAGS = new Set(['layout', 'render', 'include']);

export class Loader {
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
      const read = readFrontMatter(file, text, (...problem) => this.problem(...problem));
      if (read) {
        if (read.front) part.front = read.front;
        this.sources[entry.name] = read.body;
        this.origins.set(entry.name, { file, line: read.bodyLine, column: 1 }, read.body);
      }
      part.html = entry.name;
    }
  }

  /** Splits `---` YAML `---` from the body; the body keeps its place in the file for positions. */
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

/** A tag's nested templates, without loading partials (liquidjs's children() is a generator). */
function children(template: Template): Template[] {
  return template.children ? toValueSync(template.children(false, true)) : [];
}

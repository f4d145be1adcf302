import { type Liquid, LiquidError, type Template } from 'liquidjs';
import { htmlToText, tidyText } from './html-to-text';
import { type LoadResult, Loader, type Parsed } from './template-loader';
import { liquidMessage, type Origins } from './template-origins';
import type { RenderedEmail, TemplateVars } from './template-format';

export * from './template-format';

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
      // Synchronous: everything a template includes is parsed and in memory (no file is read), and
      // the async renderer's promise per node costs a campaign send about a third of its render.
      return String(engine.renderSync(template, {}, { globals }));
    } catch (err) {
      if (err instanceof LiquidError && err.token) {
        const at = this.origins.ofToken(err.token);
        throw new TemplateRenderError(liquidMessage(err), at.file, at.line, at.column);
      }
      throw new TemplateRenderError(err instanceof Error ? err.message : String(err));
    }
  }
}

/**
 * A header value from a template: the subject and preheader can hold a trait or a first name, data
 * from outside. Every run of whitespace (CR, LF, tab, NEL, the Unicode line and paragraph separators)
 * becomes one space and every other control character is dropped, so whatever a value holds, the
 * subject is one line; mime.ts encodes it (RFC 2047) where it is not plain ASCII.
 */
export function oneLine(text: string): string {
  return text
    .replace(/[\s\u0085]+/g, ' ')
    .replace(/\p{Cc}/gu, '')
    .trim();
}

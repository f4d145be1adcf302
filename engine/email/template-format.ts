import { z } from 'zod';

/** What a template may contain and what rendering gives: the format of rules/templates/ (engine/email/templates.ts). */

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

import { z } from 'zod';

/**
 * `rules/purposes.yaml`: the purposes personal data is processed for and the notices (texts shown
 * when asking for consent) that name them. Purposes must be specified and explicit before any
 * processing (GDPR Art. 5(1)(b) purpose limitation); the engine allows an action only through a
 * purpose that lists it and that the person has agreed to (or that rests on legitimate interest).
 */

/** What the engine may do with a person's data; each purpose lists the ones it allows. */
export const CAPABILITIES = ['send_marketing_email', 'build_segments', 'behavioural_triggers', 'link_events_to_profile'] as const;
export type Capability = (typeof CAPABILITIES)[number];

/** GDPR Art. 6(1)(a) consent, Art. 6(1)(f) legitimate interests; the other bases do not fit marketing. */
export const LEGAL_BASES = ['consent', 'legitimate_interest'] as const;
export type LegalBasis = (typeof LEGAL_BASES)[number];

export const PurposeName = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,62}$/, 'expected a lower-case name of letters, digits and _, starting with a letter');
export type PurposeName = z.infer<typeof PurposeName>;

const Text = z.string().min(1, 'expected 1 to 2000 characters').max(2000, 'expected 1 to 2000 characters');

const LanguageCode = z.string().regex(/^[a-z]{2}(-[A-Z]{2})?$/, 'expected a language code such as "en", "pl" or "pt-BR"');

// Consent must be asked for in clear and plain language (GDPR Art. 7(2), Art. 12(1)), so a purpose
// may be described in each language its audience reads; English is the one always present, the
// fallback for any other.
const Description = z.union(
  [
    Text,
    z
      .record(LanguageCode, Text)
      .refine((texts) => Object.hasOwn(texts, 'en'), 'expected an "en" (English) description among the languages')
      .meta({ required: ['en'] }),
  ],
  { error: 'expected a description, or descriptions by language code (en, pl, …) including en' },
);

const TCF_PURPOSE = 'expected a TCF purpose number from 1 to 11';

export const Purpose = z.strictObject({
  description: Description,
  legal_basis: z.enum(LEGAL_BASES, {
    error: 'expected consent (GDPR Art. 6(1)(a)) or legitimate_interest (GDPR Art. 6(1)(f))',
  }),
  allows: z
    .array(z.enum(CAPABILITIES, { error: `expected one of ${CAPABILITIES.join(', ')}` }))
    .min(1, 'expected at least one capability the purpose allows'),
  // Data kept for the purpose is erased once no longer needed (GDPR Art. 5(1)(e) storage limitation).
  retention: z
    .string()
    .regex(
      /^[1-9]\d{0,3}(d|w|mo|y)$/,
      'expected a period such as "90d", "6w", "13mo" or "2y": a whole number from 1 to 9999 followed by d (days), w (weeks), mo (months) or y (years)',
    ),
  /** IAB TCF v2.2 purposes (1 to 11) whose consent signal from a CMP counts as consent to this purpose. */
  tcf_purposes: z.array(z.int(TCF_PURPOSE).min(1, TCF_PURPOSE).max(11, TCF_PURPOSE)).default([]),
  /**
   * Grants only through a confirmed double opt-in (or the person's own preference page): a form or
   * an API call naming an address proves nothing about who owns it.
   */
  double_opt_in: z.boolean({ error: 'expected true or false' }).default(false),
  /** Segment Consent Management category names that map to this purpose. */
  segment_categories: z
    .array(z.string().min(1, 'expected 1 to 100 characters').max(100, 'expected 1 to 100 characters'))
    .default([]),
});
export type Purpose = z.infer<typeof Purpose>;

// The engine keeps, with each consent, which notice and version was shown, to demonstrate what the
// person agreed to (GDPR Art. 7(1)); so a changed text needs a new version, never an edit in place.
export const Notice = z.strictObject({
  id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'expected up to 100 letters, digits, _, . or -, starting with a letter or digit'),
  version: z.int('expected a whole number from 1').min(1, 'expected a whole number from 1'),
  text: z.string().min(1, 'expected 1 to 20000 characters').max(20000, 'expected 1 to 20000 characters'),
  purposes: z.array(PurposeName).min(1, 'expected at least one purpose the notice asks for'),
});
export type Notice = z.infer<typeof Notice>;

export const PurposesFile = z
  .strictObject({
    purposes: z
      .record(PurposeName, Purpose)
      .refine((purposes) => Object.keys(purposes).length > 0, 'expected at least one purpose')
      .meta({ minProperties: 1 }),
    notices: z.array(Notice).default([]),
  })
  .superRefine((file, ctx) => {
    const declared = Object.keys(file.purposes);
    // Consent signals from Segment arrive by category; each must settle exactly one purpose.
    const byCategory = new Map<string, string>(declared.map((name) => [name.toLowerCase(), name]));
    for (const [name, purpose] of Object.entries(file.purposes)) {
      purpose.segment_categories.forEach((category, k) => {
        const owner = byCategory.get(category.toLowerCase());
        if (owner === undefined) byCategory.set(category.toLowerCase(), name);
        else if (owner !== name) {
          ctx.addIssue({
            code: 'custom',
            path: ['purposes', name, 'segment_categories', k],
            message: `Segment category "${category}" already maps to purpose "${owner}"; a category can map to one purpose only`,
          });
        }
      });
    }
    const seen = new Map<string, number>();
    file.notices.forEach((notice, i) => {
      notice.purposes.forEach((name, j) => {
        if (!Object.hasOwn(file.purposes, name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['notices', i, 'purposes', j],
            message: `unknown purpose "${name}"; the purposes declared in this file are ${declared.join(', ')}`,
          });
        }
      });
      const key = JSON.stringify([notice.id, notice.version]);
      const first = seen.get(key);
      if (first === undefined) seen.set(key, i);
      else {
        ctx.addIssue({
          code: 'custom',
          path: ['notices', i, 'version'],
          message: `notice "${notice.id}" version ${notice.version} is already declared at notices.${first}; give a changed text a new version`,
        });
      }
    });
  });
export type PurposesFile = z.infer<typeof PurposesFile>;

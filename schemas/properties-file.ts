import { z } from 'zod';

/**
 * `rules/properties.yaml`: which event properties and profile traits are stored. Everything not
 * listed is dropped before storage (GDPR Art. 5(1)(c) data minimisation, Art. 25 by default), so an
 * omitted section keeps nothing rather than everything.
 */

const PropertyName = z
  .string()
  .min(1, 'expected 1 to 100 characters')
  .max(100, 'expected 1 to 100 characters');

const NameList = z.array(PropertyName);

const AllowList = z.strictObject({ allow: NameList.default([]) });

// Traits the engine always treats as personal data, whatever the file says (see properties-policy).
export const ALWAYS_PII_TRAITS: readonly string[] = ['email', 'phone'];

const Traits = z
  .strictObject({ allow: NameList.default([]), pii: NameList.default([]) })
  .superRefine((traits, ctx) => {
    const pii = new Set(traits.pii);
    traits.allow.forEach((name, index) => {
      if (pii.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['allow', index],
          message: `"${name}" is listed in both traits.allow and traits.pii; keep it only in traits.pii (stored encrypted)`,
        });
      } else if (ALWAYS_PII_TRAITS.includes(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['allow', index],
          message: `"${name}" is always personal data and stored only encrypted; list it in traits.pii, not traits.allow`,
        });
      }
    });
  });

export const PropertiesFile = z.strictObject({
  /** Track events that have no entry of their own under `events`. */
  default: AllowList.default({ allow: [] }),
  /** Track events, by event name. */
  events: z
    .record(z.string().min(1, 'expected an event name').max(200, 'expected at most 200 characters'), AllowList)
    .default({}),
  /** Page and screen calls. */
  pages: AllowList.default({ allow: [] }),
  traits: Traits.default({ allow: [], pii: [] }),
});
export type PropertiesFile = z.infer<typeof PropertiesFile>;

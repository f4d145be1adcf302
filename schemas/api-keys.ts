import { z } from 'zod';
import { Role } from './roles';

export const ApiKeyName = z
  .string()
  .trim()
  .min(1, 'expected 1 to 100 characters')
  .max(100, 'expected 1 to 100 characters')
  .regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed');

/** A key may live at most ten years; one that is already past would be created dead. */
export const ApiKeyExpiry = z.iso
  .datetime({ offset: true, error: 'expected an ISO 8601 time with a zone, e.g. 2027-03-01T00:00:00Z' })
  .transform((text) => new Date(text))
  .refine((at) => at.getTime() > Date.now(), 'expected a time in the future')
  .refine((at) => at.getTime() < Date.now() + 10 * 366 * 86_400_000, 'expected a time within ten years');

export const CreateApiKeyBody = z.object({ role: Role, name: ApiKeyName.optional(), expiresAt: ApiKeyExpiry.optional() }).strict();
export type CreateApiKeyBody = z.infer<typeof CreateApiKeyBody>;

export const ApiKeyIdParams = z.object({ id: z.uuid({ error: 'expected an API key id (a uuid, as `consentflow keys list` prints)' }) });

/** A key as listed: never the secret, which is shown once at creation. */
export const ApiKeySummary = z.object({
  id: z.uuid(),
  name: z.string(),
  role: Role,
  prefix: z.string(),
  createdAt: z.iso.datetime(),
  expiresAt: z.iso.datetime().nullable(),
  revokedAt: z.iso.datetime().nullable(),
  lastUsedAt: z.iso.datetime().nullable(),
});
export type ApiKeySummary = z.infer<typeof ApiKeySummary>;

export const CreatedApiKey = ApiKeySummary.extend({ key: z.string() });
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

import { z } from 'zod';
import { Role } from './roles';

export const ApiKeyName = z
  .string()
  .trim()
  .min(1, 'expected 1 to 100 characters')
  .max(100, 'expected 1 to 100 characters')
  .regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed');

export const CreateApiKeyBody = z.object({ role: Role, name: ApiKeyName.optional() }).strict();
export type CreateApiKeyBody = z.infer<typeof CreateApiKeyBody>;

/** A key as listed: never the secret, which is shown once at creation. */
export const ApiKeySummary = z.object({
  id: z.uuid(),
  name: z.string(),
  role: Role,
  prefix: z.string(),
  createdAt: z.iso.datetime(),
  revokedAt: z.iso.datetime().nullable(),
});
export type ApiKeySummary = z.infer<typeof ApiKeySummary>;

export const CreatedApiKey = ApiKeySummary.extend({ key: z.string() });
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

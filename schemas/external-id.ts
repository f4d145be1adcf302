import { z } from 'zod';

/**
 * An id a site sends (userId, anonymousId, groupId): Segment libraries send strings, some send
 * numbers; both are accepted, trimmed, and kept as strings.
 */
export const ExternalId = z
  .union([z.string(), z.number().finite()], { error: 'expected a string or a number' })
  .transform((v) => String(v).trim())
  .pipe(z.string().min(1, 'expected a non-empty id').max(200, 'expected at most 200 characters'));

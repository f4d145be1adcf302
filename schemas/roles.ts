import { z } from 'zod';

/** Each API key has exactly one role (least privilege; the matrix grows with each admin route). */
export const Role = z.enum(['marketer', 'operator', 'privacy_officer', 'admin'], {
  error: 'expected one of marketer, operator, privacy_officer, admin',
});
export type Role = z.infer<typeof Role>;

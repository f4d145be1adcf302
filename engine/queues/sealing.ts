import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * Job payloads that may carry PII (a tracking event's traits) are sealed with AES-256-GCM before
 * they reach Redis, so Redis, its AOF and its backups never hold them in plaintext (invariant 1),
 * even a failed job kept for the dead-letter view. The key is derived from the master key, never
 * stored; the queue and job name are authenticated with the payload, so a sealed payload cannot be
 * replayed as another kind of job.
 */
export const SealedPayload = z.object({ sealed: z.string().min(1) }).strict();
export type SealedPayload = z.infer<typeof SealedPayload>;

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SealingError extends Error {
  override readonly name = 'SealingError';
}

export function queueSealingKey(masterKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'consentflow queue payloads v1', 32));
}

export function seal(key: Buffer, context: string, payload: unknown): SealedPayload {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return { sealed: Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]).toString('base64') };
}

export function unseal(key: Buffer, context: string, data: unknown): unknown {
  const parsed = SealedPayload.safeParse(data);
  if (!parsed.success) throw new SealingError('expected a sealed payload ({"sealed": "<base64>"})');
  const raw = Buffer.from(parsed.data.sealed, 'base64');
  if (raw.length < 1 + IV_BYTES + TAG_BYTES || raw[0] !== VERSION) throw new SealingError('unknown sealed payload format');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(1, 1 + IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
    const text = Buffer.concat([decipher.update(raw.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    return JSON.parse(text) as unknown;
  } catch {
    throw new SealingError('the sealed payload does not open with this key (tampered, or sealed under another MASTER_KEY)');
  }
}

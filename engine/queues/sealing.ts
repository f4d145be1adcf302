import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { z } from 'zod';

/**
 * Job payloads that may carry PII (a tracking event's traits) are sealed with AES-256-GCM before
 * they reach Redis, so Redis, its AOF and its backups never hold them in plaintext (invariant 1),
 * even a failed job kept for the dead-letter view. The key is derived from the master key, never
 * stored; the queue and job name are authenticated with the payload, so a sealed payload cannot be
 * replayed as another kind of job. The JSON is deflated first: a job of 500 events shrinks about
 * 15×, which makes encryption, base64 and Redis memory cheaper than sealing the plain text.
 */
export const SealedPayload = z.object({ sealed: z.string().min(1) }).strict();
export type SealedPayload = z.infer<typeof SealedPayload>;

const VERSION = 1; // deflate-raw, then AES-256-GCM
// The worker never inflates more than this; a job is at most 1,000 events of at most 32 KB.
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;
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
  const body = Buffer.concat([cipher.update(deflateRawSync(JSON.stringify(payload), { level: 1 })), cipher.final()]);
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
    const deflated = Buffer.concat([decipher.update(raw.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    return JSON.parse(inflateRawSync(deflated, { maxOutputLength: MAX_INFLATED_BYTES }).toString('utf8')) as unknown;
  } catch {
    throw new SealingError('the sealed payload does not open with this key (tampered, or sealed under another MASTER_KEY)');
  }
}

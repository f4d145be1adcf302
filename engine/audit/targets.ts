import { createHmac, hkdfSync } from 'node:crypto';
import type { Keys } from '../config';

/**
 * An audit entry names a person by a keyed pseudonym of their profile id, never by the id itself:
 * the log outlives erasure (it is the evidence that erasure happened, GDPR Art. 5(2), 17(3)(b)),
 * and once the profile id is gone everywhere else the pseudonym links to nobody. A privacy officer
 * who has a live profile id can still find its entries (GET /admin/v1/audit?profileId=…).
 */
export function subjectTarget(keys: Keys, profileId: string): string {
  const key = hkdfSync('sha256', keys.pseudonym, Buffer.alloc(0), 'consentflow audit subject v1', 32);
  return `subject:${createHmac('sha256', Buffer.from(key)).update(profileId.toLowerCase(), 'utf8').digest('base64url').slice(0, 22)}`;
}

export const erasureTarget = (requestId: string): string => `erasure:${requestId}`;
export const keyTarget = (keyId: string): string => `key:${keyId}`;

/**
 * A job, keyed like a subject: job ids name people (`send-<send id>`, `forget-<profile id>-…`), and
 * the log cannot be erased, so the id itself never goes in.
 */
export function jobTarget(keys: Keys, queue: string, jobId: string): string {
  const key = hkdfSync('sha256', keys.pseudonym, Buffer.alloc(0), 'consentflow audit job v1', 32);
  return `job:${queue}/${createHmac('sha256', Buffer.from(key)).update(`${queue}/${jobId}`, 'utf8').digest('base64url').slice(0, 22)}`;
}

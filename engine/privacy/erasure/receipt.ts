import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { Verification } from './verify';
import type { WebhookAnswer } from './webhooks';
import { canonicalJson } from '../canonical-json';

/**
 * Step 8: the receipt, which can be shown to the person or to an authority (GDPR Art. 5(2):
 * accountability). It names no person: the request id, times, what was removed per store, what
 * the verification found and what each processor answered. It is signed with an HMAC under a key
 * derived from LINK_SIGNING_KEY, so an edited receipt no longer verifies.
 */

export interface ErasureReceipt {
  readonly format: 'consentflow-erasure-receipt/1';
  readonly requestId: string;
  readonly origin: string;
  readonly requestedAt: string;
  readonly completedAt: string;
  readonly deadlineAt: string;
  readonly profilesErased: number;
  readonly removed: Readonly<Record<string, number>>;
  readonly dataKeysDestroyed: number;
  readonly verification: {
    readonly clean: boolean;
    readonly checkedColumns: number;
    readonly checkedJobs: number;
    readonly identifiers: number;
    readonly findings: Verification['findings'];
    readonly deep: { readonly clean: boolean; readonly findings: Verification['findings'] } | null;
  };
  /** Processors informed (Art. 19): the host only, and what it answered. */
  readonly processors: ReadonlyArray<{ readonly host: string; readonly status: number | null; readonly ok: boolean }>;
  readonly suppressed: boolean;
  /** Until when late events for the erased identifiers are dropped. */
  readonly tombstonesExpireAt: string;
}

export function receiptKey(linkSigningKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', linkSigningKey, Buffer.alloc(0), 'consentflow erasure receipts v1', 32));
}

export function signReceipt(key: Buffer, receipt: unknown): string {
  return `hmac-sha256:${createHmac('sha256', key).update(canonicalJson(receipt)).digest('base64url')}`;
}

export function verifyReceipt(key: Buffer, receipt: unknown, signature: string): boolean {
  const expected = Buffer.from(signReceipt(key, receipt));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export function processorAnswers(answers: readonly WebhookAnswer[]): ErasureReceipt['processors'] {
  return answers.map((a) => {
    let host = 'invalid';
    try {
      host = new URL(a.url).host;
    } catch {}
    return { host, status: a.status, ok: a.ok };
  });
}

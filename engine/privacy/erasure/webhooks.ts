import { createHmac } from 'node:crypto';
import type { SealedSubject } from './work';

/**
 * Step 5: the processors that received the person's data are told to erase it too (GDPR Art. 19).
 * Each configured URL gets one POST per request, signed with ERASURE_WEBHOOK_SECRET when set
 * (`X-Consentflow-Signature: sha256=<hex HMAC of the body>`), and its answer is recorded. A URL that
 * answered 2xx is not called again if the step runs again after a crash. A refusal or a timeout does
 * not hold the erasure back: the receipt lists it as failed, for the privacy officer to follow up.
 */

export interface WebhookAnswer {
  readonly url: string;
  readonly status: number | null;
  readonly ok: boolean;
  readonly error?: string;
  readonly at: string;
}

const TIMEOUT_MS = 10_000;

export async function callErasureWebhooks(
  urls: readonly string[],
  secret: string | undefined,
  requestId: string,
  subject: SealedSubject,
  previous: readonly WebhookAnswer[],
): Promise<WebhookAnswer[]> {
  const answers: WebhookAnswer[] = [];
  const body = JSON.stringify({
    type: 'erasure_request',
    request_id: requestId,
    subject: { email: subject.email ?? null, user_id: subject.userId ?? null, anonymous_id: subject.anonymousId ?? null },
  });
  for (const url of urls) {
    const done = previous.find((p) => p.url === url && p.ok);
    if (done) {
      answers.push(done);
      continue;
    }
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': `erasure-${requestId}` };
    if (secret) headers['x-consentflow-signature'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
    const at = new Date().toISOString();
    try {
      const response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'error' });
      await response.body?.cancel();
      answers.push({ url, status: response.status, ok: response.ok, at });
    } catch (err) {
      answers.push({ url, status: null, ok: false, error: err instanceof Error ? err.name : 'error', at });
    }
  }
  return answers;
}

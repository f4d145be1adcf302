import { basicAuth } from '../../support/engine';

/** What the API answered to the events a load generator sent, by message id. */
export interface PostLedger {
  /** Message ids of events answered 2xx (accepted: in Redis, by the API's promise). */
  readonly accepted: Set<string>;
  /** HTTP status → requests answered with it (0: no answer, the connection failed). */
  readonly statuses: Map<number, number>;
  /** Requests answered 5xx other than 503: never expected. */
  readonly serverErrors: string[];
}

export function newLedger(): PostLedger {
  return { accepted: new Set(), statuses: new Map(), serverErrors: [] };
}

export type Event = Record<string, unknown> & { messageId: string };

/** POST /v1/batch once; records the answer in the ledger. Returns the status (0: no answer). */
export async function postBatch(url: string, writeKey: string, batch: readonly Event[], ledger?: PostLedger, timeoutMs = 15_000): Promise<number> {
  let status = 0;
  let text = '';
  try {
    const res = await fetch(`${url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basicAuth(writeKey) },
      body: JSON.stringify({ batch }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.status;
    text = await res.text();
  } catch {
    status = 0;
  }
  if (ledger) {
    ledger.statuses.set(status, (ledger.statuses.get(status) ?? 0) + 1);
    if (status >= 200 && status < 300) {
      // A batch with rejected items says which; the fault scenarios send only valid events.
      const body = JSON.parse(text) as { rejected?: Array<{ index: number }> };
      const rejected = new Set((body.rejected ?? []).map((r) => r.index));
      batch.forEach((e, i) => {
        if (!rejected.has(i)) ledger.accepted.add(e.messageId);
      });
    } else if (status >= 500 && status !== 503) ledger.serverErrors.push(`${status} ${text.slice(0, 300)}`);
  }
  return status;
}

/** Splits events into batches of `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Runs `task` over items with at most `concurrency` at once. */
export async function inParallel<T>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await task(items[i] as T, i);
    }),
  );
}

/**
 * Posts every batch until the API accepts it (a client SDK retries 503s and lost connections the
 * same way), at most `concurrency` requests at once.
 */
export async function postAll(
  url: string,
  writeKey: string,
  batches: readonly Event[][],
  concurrency: number,
  ledger: PostLedger = newLedger(),
  options: { batchesPerSecond?: number } = {},
): Promise<PostLedger> {
  const startedAt = Date.now();
  await inParallel(batches, concurrency, async (batch, index) => {
    // A steady load: batch i is not sent before i / rate seconds.
    if (options.batchesPerSecond) {
      const due = startedAt + (index * 1_000) / options.batchesPerSecond;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    }
    const deadline = Date.now() + 60_000;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
      const status = await postBatch(url, writeKey, batch, ledger);
      if (status >= 200 && status < 300) return;
      if (status !== 0 && status !== 503 && status !== 429) throw new Error(`the API answered ${status} to a valid batch`);
      if (Date.now() > deadline) throw new Error(`a batch was not accepted within 60 s (last status ${status})`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  });
  return ledger;
}

const iso = () => new Date().toISOString();

/**
 * `people` people, `perPerson` events each (ids `${tag}-p${n}-e${k}`): a track "Consent Updated"
 * granting every purpose of the fault rules with the address in context.traits (so the address is in
 * the vault whatever order the events are processed in), then an identify (trait `plan`: `plan`, or
 * pro/free) and page/track events.
 */
export function subscriberEvents(tag: string, people: number, perPerson: number, plan?: string): Event[] {
  const events: Event[] = [];
  for (let p = 0; p < people; p++) {
    const userId = `${tag}-u${p}`;
    for (let k = 0; k < perPerson; k++) {
      const messageId = `${tag}-p${p}-e${k}`;
      if (k === 0) {
        events.push({
          type: 'track',
          event: 'Consent Updated',
          messageId,
          userId,
          timestamp: iso(),
          properties: { purposes: { email_marketing: true, profiling: true, analytics: true }, notice: { id: 'account_settings', version: 1 } },
          context: { traits: { email: `${userId}@example.com` } },
        });
      } else if (k === 1) {
        events.push({ type: 'identify', messageId, userId, timestamp: iso(), traits: { plan: plan ?? (p % 2 ? 'pro' : 'free') } });
      } else if (k % 2 === 0) {
        events.push({ type: 'page', name: 'Article', messageId, userId, timestamp: iso(), properties: { path: `/a/${k}` } });
      } else {
        events.push({ type: 'track', event: 'Article Read', messageId, userId, timestamp: iso(), properties: { article: `a${k}` } });
      }
    }
  }
  return events;
}

/** Plain behavioural events (no consent, no address): `count` events over `people` people. */
export function plainEvents(tag: string, count: number, people: number): Event[] {
  return Array.from({ length: count }, (_, i) => {
    const userId = `${tag}-u${i % people}`;
    const messageId = `${tag}-e${i}`;
    return i % 3 === 0
      ? { type: 'page', name: 'Home', messageId, userId, timestamp: iso(), properties: { path: `/p/${i}` } }
      : i % 3 === 1
        ? { type: 'track', event: 'Clicked', messageId, userId, timestamp: iso(), properties: { n: i } }
        : { type: 'identify', messageId, userId, timestamp: iso(), traits: { plan: 'pro' } };
  });
}

/**
 * The load of `npm run bench:pipeline`: Segment batches of 50 events posted to `/v1/batch` over
 * keep-alive HTTP/1.1 connections at a fixed rate (open loop: requests leave on schedule whether or
 * not earlier ones have been answered, up to `maxInFlight`), optionally paused while the pipeline's
 * backlog is above a bound (`paused`), so a throughput run measures what is stored without letting
 * Redis fill up.
 *
 * The events: 90 % from known people (person i sends userId `user-<i>` and anonymousId
 * `anon-<i>`, seeded by pipeline-seed.ts) picked uniformly among all of them, 10 % from new
 * anonymous visitors (about four events each, so a new profile every forty events). What the known
 * people send, and why: pages 40 %; `Product Viewed` 18 % (no rule reads it); `Article Read` 20 %
 * (the engaged_readers segment counts them, the reengagement journey waits for one); `Product Added`
 * 4 %, price 5–120 (the abandoned_cart trigger needs price ≥ 20); `Checkout Started` 2 % (its
 * wait_until); `Order Completed` 1 % (its exit); identify 5 % (traits, the address again, so the
 * vault is written). Visitors send pages.
 *
 * `probe`, when given, is asked for one extra event per request (the latency probes).
 */
import http from 'node:http';

export const BATCH_SIZE = 50;

export interface LoadOptions {
  readonly url: string;
  readonly writeKey: string;
  /** Known people are 0 … people − 1; background events go to firstPerson … people − 1. */
  readonly people: number;
  readonly firstPerson: number;
  /** Distinguishes this run's messageIds and visitors from another run on the same database. */
  readonly runId: string;
  readonly maxInFlight: number;
}

export interface LoadCounters {
  /** Requests answered 2xx and the events they carried (all accepted: the load sends only valid events). */
  requests: number;
  accepted: number;
  /** Events in requests answered with an error, or lost to a connection error. */
  failed: number;
  non2xx: number;
  errors: number;
  /** Requests the schedule asked for that were not sent: at maxInFlight, or paused on the backlog. */
  skippedInFlight: number;
  skippedPaused: number;
  /** New anonymous visitors introduced (each becomes a profile). */
  visitors: number;
}

type Json = Record<string, unknown>;

const PAGES = [
  ['/', 'Home'],
  ['/pricing', 'Pricing'],
  ['/blog', 'Blog'],
  ['/blog/consent-that-holds', 'Consent that holds'],
  ['/products/shoe-42', 'Trail shoe'],
  ['/cart', 'Cart'],
] as const;
const USER_AGENT = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

/** A small fast PRNG (mulberry32): the load is the same shape in every run, and costs nothing to draw. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export class Load {
  readonly counters: LoadCounters = { requests: 0, accepted: 0, failed: 0, non2xx: 0, errors: 0, skippedInFlight: 0, skippedPaused: 0, visitors: 0 };
  /** Milliseconds from send to response of every answered request (for the report's percentiles). */
  readonly responseMs: number[] = [];
  private readonly agent: http.Agent;
  private readonly target: URL;
  private readonly auth: string;
  private readonly random = rng(42);
  private message = 0;
  private readonly visitors: string[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private pending = new Set<Promise<void>>();
  /** Events a second asked for (0: stopped). */
  private rate = 0;
  private credit = 0;
  private last = 0;
  paused: () => boolean = () => false;
  probe: (() => { event: Json; sent: (at: number) => void; answered: (at: number, ok: boolean) => void } | undefined) | undefined;

  constructor(private readonly options: LoadOptions) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxInFlight });
    this.target = new URL('/v1/batch', options.url);
    this.auth = `Basic ${Buffer.from(`${options.writeKey}:`).toString('base64')}`;
    for (let v = 0; v < 256; v++) this.visitors.push(this.newVisitor());
  }

  private newVisitor(): string {
    this.counters.visitors++;
    return `v-${this.options.runId}-${this.counters.visitors}`;
  }

  private page(): Json {
    const [path, title] = PAGES[Math.floor(this.random() * PAGES.length)] as (typeof PAGES)[number];
    return { name: title, properties: { path, title, url: `https://shop.example${path}`, referrer: 'https://www.google.com/' } };
  }

  private event(): Json {
    const common = {
      messageId: `${this.options.runId}-${++this.message}`,
      timestamp: new Date().toISOString(),
      context: { userAgent: USER_AGENT, locale: 'pl-PL', library: { name: 'analytics.js', version: '5.0.0' } },
    };
    const r = this.random();
    if (r < 0.1) {
      const slot = Math.floor(this.random() * this.visitors.length);
      if (this.random() < 0.25) this.visitors[slot] = this.newVisitor();
      return { ...common, type: 'page', anonymousId: this.visitors[slot], ...this.page() };
    }
    const span = this.options.people - this.options.firstPerson;
    const i = this.options.firstPerson + Math.floor(this.random() * span);
    const person = { ...common, userId: `user-${i}`, anonymousId: `anon-${i}` };
    const k = (r - 0.1) / 0.9;
    if (k < 0.4) return { ...person, type: 'page', ...this.page() };
    if (k < 0.58) return { ...person, type: 'track', event: 'Product Viewed', properties: { product_id: `p-${Math.floor(this.random() * 500)}`, price: 19.99 } };
    if (k < 0.78) return { ...person, type: 'track', event: 'Article Read', properties: { article_id: `a-${Math.floor(this.random() * 200)}`, category: 'guides' } };
    if (k < 0.82) {
      const price = Math.round(500 + this.random() * 11_500) / 100;
      return { ...person, type: 'track', event: 'Product Added', properties: { product_id: `p-${Math.floor(this.random() * 500)}`, price, currency: 'PLN' } };
    }
    if (k < 0.84) return { ...person, type: 'track', event: 'Checkout Started', properties: { cart_value: 59.9 } };
    if (k < 0.85) return { ...person, type: 'track', event: 'Order Completed', properties: { order_id: `o-${this.message}`, total: 59.9, currency: 'PLN' } };
    return {
      ...person,
      type: 'identify',
      traits: { plan: this.random() < 0.8 ? 'free' : 'pro', language: 'pl', email: `person-${String(i).padStart(7, '0')}@bench.example.com` },
    };
  }

  private send(): void {
    const batch: Json[] = [];
    const probe = this.probe?.();
    if (probe) batch.push(probe.event);
    while (batch.length < BATCH_SIZE) batch.push(this.event());
    const body = Buffer.from(JSON.stringify({ batch }));
    const started = Date.now();
    probe?.sent(started);
    this.inFlight++;
    const done = new Promise<void>((resolve) => {
      const req = http.request(
        this.target,
        { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: this.auth } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const at = Date.now();
            const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
            if (ok) {
              this.counters.requests++;
              this.counters.accepted += batch.length;
              this.responseMs.push(at - started);
            } else {
              this.counters.non2xx++;
              this.counters.failed += batch.length;
              if (this.counters.non2xx <= 3) process.stderr.write(`load: HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}\n`);
            }
            probe?.answered(at, ok);
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        this.counters.errors++;
        this.counters.failed += batch.length;
        if (this.counters.errors <= 3) process.stderr.write(`load: ${err.message}\n`);
        probe?.answered(Date.now(), false);
        resolve();
      });
      req.end(body);
    });
    this.pending.add(done);
    void done.finally(() => {
      this.inFlight--;
      this.pending.delete(done);
    });
  }

  /** Sends `eventsPerSecond` from now on (0 stops sending; in-flight requests still finish). */
  setRate(eventsPerSecond: number): void {
    this.rate = eventsPerSecond;
    this.credit = 0;
    this.last = performance.now();
    if (eventsPerSecond > 0 && !this.timer) this.timer = setInterval(() => this.tick(), 2);
    if (eventsPerSecond === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private tick(): void {
    const now = performance.now();
    this.credit += ((now - this.last) / 1_000) * (this.rate / BATCH_SIZE);
    this.last = now;
    while (this.credit >= 1) {
      this.credit -= 1;
      if (this.paused()) this.counters.skippedPaused++;
      else if (this.inFlight >= this.options.maxInFlight) this.counters.skippedInFlight++;
      else this.send();
    }
  }

  /** Stops sending and waits for the requests in flight. */
  async stop(): Promise<void> {
    this.setRate(0);
    await Promise.all([...this.pending]);
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Event → decision latency for `npm run bench:pipeline`: probe events ride in the load's batches, and
 * a poller watches app.decisions for the rule decision each one causes.
 *
 * A probe is a `Product Added` at 49.90 from one of the probe people (seeded people kept out of the
 * background load, each with consent to email_marketing and profiling): the abandoned_cart trigger
 * matches it, and the rules record a decision for it (`enrol` the first time, `skip: already
 * enrolled` after) in the same transaction as the event. A person has one probe outstanding at a
 * time, so the first abandoned_cart decision of that person decided after the probe was sent is the
 * probe's.
 *
 * Times, all on this machine's clock: `sent` (the client writes the request), `answered` (the API's
 * 2xx arrives), `decided` (app.decisions.decided_at, the start of the worker's transaction: a lower
 * bound of the commit) and `committed`: the start of the first poll that sees the row (polls every
 * POLL_MS, so this overstates the commit by less than a poll interval plus the poll's own time).
 */
import type pg from 'pg';
import { uuidOf } from './pipeline-seed';

const POLL_MS = 5;
/** A probe with no decision after this long is counted as lost (and its person is not used again). */
const TIMEOUT_MS = 600_000;

export interface ProbeTimes {
  readonly person: number;
  readonly sent: number;
  answered?: number;
  answeredOk?: boolean;
  decided?: number;
  committed?: number;
  outcome?: string;
}

export class Probes {
  readonly results: ProbeTimes[] = [];
  private readonly idle: number[];
  private readonly outstanding = new Map<string, ProbeTimes>();
  private last = 0;
  private n = 0;
  private polling = false;
  private timer: NodeJS.Timeout | undefined;
  private polls = 0;
  /** Only probes sent while this is true are kept (the warm-up's are not). */
  recording = false;

  constructor(
    private readonly db: pg.Client,
    people: number,
    private readonly perSecond: number,
    private readonly runId: string,
  ) {
    this.idle = Array.from({ length: people }, (_, i) => i);
  }

  /** For Load.probe: a probe event when one is due and a probe person is free. */
  next(): { event: Record<string, unknown>; sent: (at: number) => void; answered: (at: number, ok: boolean) => void } | undefined {
    const now = Date.now();
    if (now - this.last < 1_000 / this.perSecond) return undefined;
    const person = this.idle.shift();
    if (person === undefined) return undefined;
    this.last = now;
    const id = uuidOf(person);
    let times: ProbeTimes | undefined;
    const record = this.recording;
    return {
      event: {
        type: 'track',
        event: 'Product Added',
        userId: `user-${person}`,
        anonymousId: `anon-${person}`,
        properties: { product_id: 'probe', price: 49.9, currency: 'PLN' },
        messageId: `probe-${this.runId}-${++this.n}`,
        timestamp: new Date(now).toISOString(),
      },
      sent: (at) => {
        times = { person, sent: at };
        this.outstanding.set(id, times);
        if (record) this.results.push(times);
      },
      answered: (at, ok) => {
        if (!times) return;
        times.answered = at;
        times.answeredOk = ok;
        if (!ok) {
          // Not accepted: no decision will come; the person is free again.
          this.outstanding.delete(id);
          this.idle.push(person);
        }
      },
    };
  }

  start(): void {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.outstanding.size === 0) return;
    this.polling = true;
    const started = Date.now();
    try {
      const since = Math.min(...[...this.outstanding.values()].map((p) => p.sent));
      this.polls++;
      const { rows } = await this.db.query<{ profile_id: string; decided: number; outcome: string | null }>(
        `select profile_id::text, extract(epoch from decided_at) * 1000 as decided, outcome from app.decisions
         where profile_id = any($1::uuid[]) and rule_id = 'abandoned_cart' and decided_at >= to_timestamp($2::float8 / 1000)
         order by decided_at`,
        [[...this.outstanding.keys()], since],
      );
      for (const row of rows) {
        const probe = this.outstanding.get(row.profile_id);
        const decided = Number(row.decided);
        if (!probe || decided < probe.sent) continue;
        probe.decided = decided;
        probe.committed = started;
        probe.outcome = row.outcome ?? undefined;
        this.outstanding.delete(row.profile_id);
        this.idle.push(probe.person);
      }
      for (const [id, probe] of this.outstanding) if (started - probe.sent > TIMEOUT_MS) this.outstanding.delete(id);
    } finally {
      this.polling = false;
    }
  }

  /** Waits for the outstanding probes (at most `ms`), then stops polling; a probe still waiting is lost. */
  async finish(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.outstanding.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    clearInterval(this.timer);
    while (this.polling) await new Promise((r) => setTimeout(r, 5));
  }

  get pollCount(): number {
    return this.polls;
  }
}

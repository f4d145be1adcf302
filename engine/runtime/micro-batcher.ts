export interface MicroBatchOptions {
  /** Write when this many items are waiting… */
  readonly maxItems: number;
  /** …or this long after the first one arrived. */
  readonly maxDelayMs: number;
}

interface Waiting {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Gathers the items of concurrent requests and writes them together, in one round trip, so that
 * throughput is not bound by one round trip per item. Each caller waits for the write that carries
 * its items: it can answer 2xx only once the store acknowledged them (DESIGN.md: never a false 2xx),
 * and a failed write reaches every caller it carried.
 */
export class MicroBatcher<T> {
  private items: T[] = [];
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly write: (items: T[]) => Promise<unknown>,
    private readonly options: MicroBatchOptions,
  ) {}

  submit(items: readonly T[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      for (const item of items) this.items.push(item);
      this.waiting.push({ resolve, reject });
      this.schedule();
    });
  }

  /**
   * An item nobody waits for: written with the others, no promise made for it. The write function
   * itself must account for a failure (the pixel intake, whose answer never depends on the write).
   */
  add(item: T): void {
    this.items.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.items.length >= this.options.maxItems) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.options.maxDelayMs);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const { items, waiting } = this;
    this.items = [];
    this.waiting = [];
    if (items.length === 0 && waiting.length === 0) return;
    // A write that throws before its promise exists fails its callers like one that rejects.
    const done = Promise.resolve()
      .then(() => this.write(items))
      .then(
        () => {
          for (const w of waiting) w.resolve();
        },
        (err: unknown) => {
          for (const w of waiting) w.reject(err);
        },
      );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  /** Writes what is waiting and waits for every write under way (shutdown). */
  async drain(): Promise<void> {
    this.flush();
    await Promise.all([...this.inFlight]);
  }
}

/**
 * Group commit for the email worker: calls that arrive while a batch is under way wait for the next
 * one, which takes them all (up to `maxBatch`). With `waitMs` 0, a call that finds nothing under way
 * starts at once, as a batch of one; under load, batches grow by themselves to what arrives during
 * one batch. With `waitMs`, a batch that is not full waits that long for more calls first: fewer,
 * bigger batches, each call later by at most that much.
 *
 * `start` begins a batch: `done` settles when the next batch may begin (the batch's own statements
 * are over), `results` settle each call, possibly later (a send's delivery outlives its claim).
 */
export interface Started<O> {
  readonly done: Promise<unknown>;
  readonly results: ReadonlyArray<Promise<O>>;
}

export interface CoalesceOptions {
  readonly maxBatch: number;
  readonly waitMs?: number;
}

interface Waiting<I, O> {
  readonly item: I;
  readonly resolve: (value: O) => void;
  readonly reject: (reason: unknown) => void;
}

export function coalesce<I, O>(start: (items: readonly I[]) => Started<O>, options: CoalesceOptions): (item: I) => Promise<O> {
  const { maxBatch, waitMs = 0 } = options;
  const queue: Waiting<I, O>[] = [];
  let running = false;
  let timer: NodeJS.Timeout | undefined;

  const run = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    running = true;
    const batch = queue.splice(0, maxBatch);
    const after = (): void => {
      running = false;
      next();
    };
    let started: Started<O>;
    try {
      started = start(batch.map((w) => w.item));
    } catch (err) {
      for (const w of batch) w.reject(err);
      after();
      return;
    }
    batch.forEach((w, i) => {
      const result = started.results[i];
      if (result) result.then(w.resolve, w.reject);
      else w.reject(new Error('a batch returned fewer results than it was given items'));
    });
    // A failed batch fails its own calls (through `results`); the next batch starts all the same.
    started.done.then(after, after);
  };

  const next = (): void => {
    if (running || queue.length === 0) return;
    if (waitMs <= 0 || queue.length >= maxBatch) run();
    else timer ??= setTimeout(run, waitMs);
  };

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      next();
    });
}

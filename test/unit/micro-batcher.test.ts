import { MicroBatcher } from '../../engine/runtime/micro-batcher';

/** The gathering every ingest path shares (events to Redis, anonymous counts to PostgreSQL). */
describe('MicroBatcher', () => {
  function recording(options = { maxItems: 3, maxDelayMs: 5 }) {
    const writes: number[][] = [];
    let failWith: Error | undefined;
    const batcher = new MicroBatcher<number>(async (items) => {
      writes.push(items);
      if (failWith) throw failWith;
    }, options);
    return { batcher, writes, fail: (err: Error | undefined) => (failWith = err) };
  }

  it('writes the items of concurrent callers together, at once when maxItems are waiting', async () => {
    const { batcher, writes } = recording({ maxItems: 3, maxDelayMs: 60_000 });
    const first = batcher.submit([1]);
    const second = batcher.submit([2, 3]);
    await Promise.all([first, second]);
    expect(writes).toEqual([[1, 2, 3]]);
  });

  it('writes what waits after maxDelayMs, and each caller resolves only after its write', async () => {
    const { batcher, writes } = recording({ maxItems: 100, maxDelayMs: 5 });
    let resolved = false;
    const pending = batcher.submit([7]).then(() => (resolved = true));
    expect(resolved).toBe(false);
    expect(writes).toEqual([]);
    await pending;
    expect(writes).toEqual([[7]]);
  });

  it('rejects every caller a failed write carried, and the next write goes on', async () => {
    const { batcher, writes, fail } = recording({ maxItems: 2, maxDelayMs: 60_000 });
    fail(new Error('store down'));
    const results = await Promise.allSettled([batcher.submit([1]), batcher.submit([2])]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toEqual(new Error('store down'));
    fail(undefined);
    await Promise.all([batcher.submit([3]), batcher.submit([4])]);
    expect(writes).toEqual([[1, 2], [3, 4]]);
  });

  it('a write that throws at once fails its callers instead of the process', async () => {
    const batcher = new MicroBatcher<number>(() => {
      throw new Error('bad write');
    }, { maxItems: 1, maxDelayMs: 5 });
    await expect(batcher.submit([1])).rejects.toThrow('bad write');
  });

  it('writes items added without a caller waiting, alone or with submitted ones', async () => {
    const { batcher, writes } = recording({ maxItems: 3, maxDelayMs: 60_000 });
    batcher.add(1);
    batcher.add(2);
    await batcher.submit([3]);
    batcher.add(4);
    await batcher.drain();
    expect(writes).toEqual([[1, 2, 3], [4]]);
  });

  it('drain writes what waits and waits for writes under way', async () => {
    let release: () => void = () => undefined;
    const writes: number[][] = [];
    const batcher = new MicroBatcher<number>(async (items) => {
      writes.push(items);
      await new Promise<void>((resolve) => (release = resolve));
    }, { maxItems: 100, maxDelayMs: 60_000 });
    const submitted = batcher.submit([5]);
    let drained = false;
    const draining = batcher.drain().then(() => (drained = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual([[5]]);
    expect(drained).toBe(false);
    release();
    await Promise.all([draining, submitted]);
    expect(drained).toBe(true);
  });
});

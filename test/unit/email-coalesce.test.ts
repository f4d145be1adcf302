import { coalesce, type Started } from '../../engine/email/coalesce';

/** A batch function that records its batches and finishes each when told to. */
function recorder<O>(result: (item: number) => O) {
  const batches: number[][] = [];
  const finishers: Array<(err?: Error) => void> = [];
  const start = (items: readonly number[]): Started<O> => {
    batches.push([...items]);
    let finish!: (err?: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = (err) => (err ? reject(err) : resolve());
    });
    finishers.push(finish);
    return { done, results: items.map((item) => done.then(() => result(item))) };
  };
  return { batches, finishers, start };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('coalesce (group commit)', () => {
  it('starts a lone call at once, and gives the calls that arrive meanwhile to the next batch', async () => {
    const r = recorder((n) => n * 10);
    const call = coalesce(r.start, { maxBatch: 10 });
    const first = call(1);
    const rest = [call(2), call(3), call(4)];
    expect(r.batches).toEqual([[1]]);
    r.finishers[0]?.();
    expect(await first).toBe(10);
    await tick();
    expect(r.batches).toEqual([[1], [2, 3, 4]]);
    r.finishers[1]?.();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  });

  it('takes at most maxBatch calls a batch', async () => {
    const r = recorder((n) => n);
    const call = coalesce(r.start, { maxBatch: 2 });
    const all = [1, 2, 3, 4, 5].map((n) => call(n));
    for (let i = 0; i < 3; i++) {
      r.finishers[i]?.();
      await tick();
    }
    expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5]);
    expect(r.batches).toEqual([[1], [2, 3], [4, 5]]);
  });

  it('with waitMs, waits for more calls before a batch that is not full', async () => {
    const r = recorder((n) => n);
    const call = coalesce(r.start, { maxBatch: 3, waitMs: 20 });
    const all = [call(1), call(2)];
    expect(r.batches).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(r.batches).toEqual([[1, 2]]);
    const full = [call(3), call(4), call(5)];
    r.finishers[0]?.();
    await tick();
    // A full batch does not wait.
    expect(r.batches).toEqual([[1, 2], [3, 4, 5]]);
    r.finishers[1]?.();
    expect(await Promise.all([...all, ...full])).toEqual([1, 2, 3, 4, 5]);
  });

  it('fails the calls of a failed batch, and the next batch runs all the same', async () => {
    const r = recorder((n) => n);
    const call = coalesce(r.start, { maxBatch: 10 });
    const failing = call(1);
    const next = call(2);
    r.finishers[0]?.(new Error('connection lost'));
    await expect(failing).rejects.toThrow('connection lost');
    await tick();
    r.finishers[1]?.();
    expect(await next).toBe(2);
  });

  it('fails the calls of a batch that could not start', async () => {
    let calls = 0;
    const call = coalesce<number, number>(() => {
      calls++;
      throw new Error('no');
    }, { maxBatch: 10 });
    await expect(call(1)).rejects.toThrow('no');
    await expect(call(2)).rejects.toThrow('no');
    expect(calls).toBe(2);
  });
});

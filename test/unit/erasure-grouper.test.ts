import { createErasureGrouper } from '../../engine/privacy/erasure/grouper';
import type { Settled } from '../../engine/privacy/erasure/run-group';

/** The in-process gathering of erasure jobs into groups (engine/privacy/erasure/grouper.ts). */

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const completed = (_id: string): Settled => ({ ok: true, outcome: { outcome: 'unknown_request' } });

describe('the erasure grouper', () => {
  it('runs the first request at once and gathers those arriving meanwhile into the next group, up to its size', async () => {
    const groups: string[][] = [];
    const gates: Array<ReturnType<typeof deferred<void>>> = [];
    const grouper = createErasureGrouper(async (ids) => {
      groups.push(ids);
      const gate = deferred<void>();
      gates.push(gate);
      await gate.promise;
      return new Map(ids.map((id) => [id, completed(id)]));
    }, 3);
    const runs = ['a', 'b', 'c', 'd', 'e'].map((id) => grouper.run(id));
    await new Promise((r) => setImmediate(r));
    expect(groups).toEqual([['a']]);
    gates[0]?.resolve();
    await runs[0];
    await new Promise((r) => setImmediate(r));
    expect(groups).toEqual([['a'], ['b', 'c', 'd']]);
    gates[1]?.resolve();
    await new Promise((r) => setImmediate(r));
    expect(groups).toEqual([['a'], ['b', 'c', 'd'], ['e']]);
    gates[2]?.resolve();
    await expect(Promise.all(runs)).resolves.toHaveLength(5);
  });

  it('settles each request with its own outcome: one failure fails only its own job', async () => {
    const grouper = createErasureGrouper(async (ids) => new Map(ids.map((id): [string, Settled] => [id, id === 'bad' ? { ok: false, error: new Error('bad one') } : completed(id)])), 10);
    const [good, bad] = [grouper.run('good'), grouper.run('bad')];
    await expect(good).resolves.toEqual({ outcome: 'unknown_request' });
    await expect(bad).rejects.toThrow('bad one');
  });

  it('fails every job of a group whose run throws, and goes on with the next group', async () => {
    let calls = 0;
    const grouper = createErasureGrouper(async (ids) => {
      calls++;
      if (calls === 1) throw new Error('database gone');
      return new Map(ids.map((id) => [id, completed(id)]));
    }, 10);
    await expect(grouper.run('x')).rejects.toThrow('database gone');
    await expect(grouper.run('y')).resolves.toEqual({ outcome: 'unknown_request' });
  });
});

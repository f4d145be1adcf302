import type { ErasureRunOutcome } from './run-erasure';
import type { Settled } from './run-group';

/**
 * Gathers the erasure jobs a process runs at once into groups (run-group.ts), the way a data loader
 * batches look-ups: the first request runs at once; those that arrive while a group runs wait for
 * it and go together next. No timer, so a lone request is not delayed, and under load each group
 * takes whatever queued meanwhile, up to `maxGroup`.
 */
export interface ErasureGrouper {
  run(requestId: string): Promise<ErasureRunOutcome>;
}

export function createErasureGrouper(runGroup: (ids: string[]) => Promise<Map<string, Settled>>, maxGroup: number): ErasureGrouper {
  let waiting: Array<{ id: string; resolve: (o: ErasureRunOutcome) => void; reject: (e: unknown) => void }> = [];
  let running = false;
  const pump = async (): Promise<void> => {
    if (running || waiting.length === 0) return;
    running = true;
    const group = waiting.slice(0, maxGroup);
    waiting = waiting.slice(maxGroup);
    try {
      const settled = await runGroup([...new Set(group.map((g) => g.id))]);
      for (const g of group) {
        const s = settled.get(g.id);
        if (!s) g.reject(new Error(`erasure request ${g.id} was not run`));
        else if (s.ok) g.resolve(s.outcome);
        else g.reject(s.error);
      }
    } catch (err) {
      for (const g of group) g.reject(err);
    } finally {
      running = false;
      void pump();
    }
  };
  return {
    run(requestId) {
      return new Promise((resolve, reject) => {
        waiting.push({ id: requestId, resolve, reject });
        void pump();
      });
    },
  };
}

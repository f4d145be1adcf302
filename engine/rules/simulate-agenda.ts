import type { SimEvent } from './simulate-input';
import type { ScheduledSend } from './simulate-person';

/** What the simulation has to do at a moment of virtual time: replay an event, or fire a timer. */
export type Item =
  | { readonly kind: 'event'; readonly event: SimEvent }
  | { readonly kind: 'segments'; readonly person: string }
  | { readonly kind: 'segment_change'; readonly person: string; readonly segmentId: string; readonly change: 'entered' | 'left' }
  | { readonly kind: 'journey'; readonly person: string; readonly campaignId: string; readonly entry: number; readonly generation: number }
  | { readonly kind: 'send'; readonly person: string; readonly send: ScheduledSend }
  | { readonly kind: 'broadcast'; readonly campaignId: string };

export interface Queued {
  readonly at: number;
  /** Timers before events at the same moment, so a window closing at T closes before an event at T. */
  readonly rank: 0 | 1;
  readonly seq: number;
  readonly item: Item;
}

const before = (a: Queued, b: Queued) => a.at - b.at || a.rank - b.rank || a.seq - b.seq;

/** A binary min-heap of timers and events, in virtual time (ms); ties keep the order they were pushed in. */
export class Agenda {
  private readonly heap: Queued[] = [];
  private seq = 0;

  push(at: number, item: Item): void {
    const q: Queued = { at, rank: item.kind === 'event' ? 1 : 0, seq: this.seq++, item };
    const h = this.heap;
    h.push(q);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (before(h[parent] as Queued, q) <= 0) break;
      h[i] = h[parent] as Queued;
      i = parent;
    }
    h[i] = q;
  }

  peek(): Queued | undefined {
    return this.heap[0];
  }

  pop(): Queued | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const child = r < h.length && before(h[r] as Queued, h[l] as Queued) < 0 ? r : l;
      if (before(h[child] as Queued, last) >= 0) break;
      h[i] = h[child] as Queued;
      i = child;
    }
    h[i] = last;
    return top;
  }
}

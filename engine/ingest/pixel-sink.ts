import type { AcceptedEvent } from '../../schemas/segment';
import type { EnqueueBatcher } from './enqueue-batcher';
import { pixelEvent, type PixelRefusal, type RawPixel } from './pixel-event';

/** What became of a set of pixels: how many reached Redis, and how many were refused, by reason. */
export interface PixelTally {
  readonly accepted: number;
  readonly refused: Partial<Record<PixelRefusal | 'unavailable', number>>;
}

/** How many pixels a tally accounts for. */
export function tallied(tally: PixelTally): number {
  let n = tally.accepted;
  for (const count of Object.values(tally.refused)) n += count ?? 0;
  return n;
}

/**
 * The rest of a pixel's way once its write key proved valid: checked, stamped (engine/ingest/
 * pixel-event.ts), gathered into events jobs and added to Redis. Each outcome is reported back as a
 * tally (the metrics live in the HTTP thread). Run in the pixel intake thread, or in the HTTP
 * thread while that thread is gone.
 */
export class PixelSink {
  constructor(
    private readonly batcher: EnqueueBatcher,
    private readonly report: (tally: PixelTally) => void,
  ) {}

  take(items: readonly RawPixel[]): void {
    const events: AcceptedEvent[] = [];
    const refused: Partial<Record<PixelRefusal, number>> = {};
    let anyRefused = false;
    for (const item of items) {
      const outcome = pixelEvent(item);
      if (outcome.ok) events.push(outcome.event);
      else {
        refused[outcome.reason] = (refused[outcome.reason] ?? 0) + 1;
        anyRefused = true;
      }
    }
    if (anyRefused) this.report({ accepted: 0, refused });
    if (events.length === 0) return;
    this.batcher.submit(events).then(
      () => this.report({ accepted: events.length, refused: {} }),
      () => this.report({ accepted: 0, refused: { unavailable: events.length } }),
    );
  }

  /** Adds what is waiting and waits for every write under way (shutdown). */
  drain(): Promise<void> {
    return this.batcher.drain();
  }
}

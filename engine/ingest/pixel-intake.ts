import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger';
import { MicroBatcher } from '../runtime/micro-batcher';
import type { RedisEndpoint } from '../redis/connection';
import { encodePixels, type RawPixel } from './pixel-event';
import { type PixelSink, type PixelTally, tallied } from './pixel-sink';

/** What the intake thread is started with: its Redis, queue prefix and the queue sealing key, nothing more. */
export interface PixelThreadData {
  readonly redis: RedisEndpoint;
  readonly prefix: string;
  readonly sealingKey: Uint8Array;
  readonly logLevel: string;
}

/** `pixels`: encodePixels (engine/ingest/pixel-event.ts) of a handful of them. */
export type ToPixelThread = { readonly kind: 'pixels'; readonly pixels: string } | { readonly kind: 'drain' };
type FromPixelThread = ({ readonly kind: 'tally' } & PixelTally) | { readonly kind: 'drained' };

export interface PixelIntakeOptions {
  readonly thread: PixelThreadData;
  /** Where pixels go while no thread can take them (it died): the HTTP thread's own sink. */
  readonly inline: PixelSink;
  /** Outcomes, for the metrics. */
  readonly report: (tally: PixelTally) => void;
  readonly log: Logger;
  /** The thread's code; the engine's own unless a test gives another (see threadScript). */
  readonly script?: ThreadScript;
  /** Hand over when this many are waiting… */
  readonly maxItems?: number;
  /** …or this long after the first one arrived. */
  readonly maxDelayMs?: number;
}

/**
 * The thread's code: the built file next to this one, or, when the engine runs from its TypeScript
 * sources (the tests), the source through tsx.
 */
export interface ThreadScript {
  readonly file: string;
  readonly eval: boolean;
}

function threadScript(): ThreadScript {
  const built = path.join(__dirname, 'pixel-thread.js');
  if (fs.existsSync(built)) return { file: built, eval: false };
  const source = path.join(__dirname, 'pixel-thread.ts');
  return { file: `require(${JSON.stringify(require.resolve('tsx/cjs'))}); require(${JSON.stringify(source)});`, eval: true };
}

/**
 * Hands the tracking pixels on to a thread of their own. A pixel's answer is the same GIF whatever
 * becomes of it, so the HTTP thread only checks what it must answer differently (address and source
 * rate limits, the write key) and gives the rest — checking, stamping, sealing, the Redis write, about
 * two thirds of a pixel's CPU — to the intake thread, gathered every few ms (docs/benchmarks.md,
 * ingest). The thread starts with the first pixel. If it dies, the pixels it held and had not
 * reported are counted unavailable (they were never promised: see engine/http/routes/pixel.ts), it
 * is logged, and the HTTP thread takes every later pixel itself.
 */
export class PixelIntake {
  private readonly gathered: MicroBatcher<RawPixel>;
  private thread: Worker | undefined;
  private failed = false;
  private closing = false;
  /** Handed to the thread and not yet reported on. */
  private outstanding = 0;
  private drained: (() => void) | undefined;

  constructor(private readonly options: PixelIntakeOptions) {
    this.gathered = new MicroBatcher<RawPixel>(async (items) => this.handOver(items), {
      maxItems: options.maxItems ?? 500,
      maxDelayMs: options.maxDelayMs ?? 2,
    });
  }

  submit(item: RawPixel): void {
    this.gathered.add(item);
  }

  private handOver(items: RawPixel[]): void {
    let thread: Worker | undefined;
    try {
      thread = this.failed || this.closing ? undefined : this.started();
    } catch (err) {
      this.options.log.error({ err }, 'the pixel intake thread could not start; the HTTP thread takes the pixels');
      this.failed = true;
    }
    if (!thread) {
      this.options.inline.take(items);
      return;
    }
    this.outstanding += items.length;
    thread.postMessage({ kind: 'pixels', pixels: encodePixels(items) } satisfies ToPixelThread);
  }

  private started(): Worker {
    if (this.thread) return this.thread;
    const script = this.options.script ?? threadScript();
    const thread = new Worker(script.file, { eval: script.eval, workerData: this.options.thread });
    thread.on('message', (message: FromPixelThread) => {
      if (message.kind === 'drained') {
        this.drained?.();
        return;
      }
      this.outstanding -= tallied(message);
      this.options.report(message);
    });
    // An uncaught error ends the thread: 'exit' follows, and says what happens next.
    thread.on('error', (err) => this.options.log.error({ err }, 'the pixel intake thread failed'));
    thread.on('exit', (code) => {
      this.thread = undefined;
      if (!this.closing) this.options.log.error({ code }, 'the pixel intake thread ended; the HTTP thread takes the pixels from now on');
      if (this.outstanding > 0) this.options.report({ accepted: 0, refused: { unavailable: this.outstanding } });
      this.outstanding = 0;
      if (!this.closing) this.failed = true;
      this.drained?.();
    });
    // An idle thread does not keep the process alive; close() ends it.
    thread.unref();
    this.thread = thread;
    return thread;
  }

  /** Hands over what is waiting, lets the thread write it all (up to `timeoutMs`) and ends the thread. */
  async close(timeoutMs: number): Promise<void> {
    await this.gathered.drain();
    this.closing = true;
    const thread = this.thread;
    if (thread) {
      const done = new Promise<void>((resolve) => {
        this.drained = resolve;
      });
      thread.postMessage({ kind: 'drain' } satisfies ToPixelThread);
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((resolve) => (timeout = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(timeout);
      await thread.terminate();
    }
    await this.options.inline.drain();
  }
}

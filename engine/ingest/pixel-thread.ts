/**
 * The pixel intake thread (a worker_thread of the API process, started by engine/ingest/
 * pixel-intake.ts): checks, stamps, seals and enqueues the pixels the HTTP thread hands it, on a
 * connection of its own. Messages in: `{ kind: 'pixels', items }`, `{ kind: 'drain' }`; out:
 * `{ kind: 'tally', … }` after each write, `{ kind: 'drained' }` once everything handed over is in
 * Redis (or failed) and the connection is closed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../log/logger';
import { Queues } from '../queues/producer';
import { createRedis } from '../redis/connection';
import { EnqueueBatcher } from './enqueue-batcher';
import type { PixelThreadData, ToPixelThread } from './pixel-intake';
import { decodePixels, type RawPixel } from './pixel-event';
import { PixelSink, type PixelTally } from './pixel-sink';

const port = parentPort;
if (!port) throw new Error('engine/ingest/pixel-thread is run as a worker thread by PixelIntake');
const data = workerData as PixelThreadData;
const log = createLogger({ level: data.logLevel }).child({ component: 'pixel-intake' });
const redis = createRedis(data.redis, 'producer', log, 'consentflow-pixel-intake');
const report = (tally: PixelTally) => port.postMessage({ kind: 'tally', ...tally });
// Pixels that arrive while the connection is first being opened wait for it, up to this many; beyond,
// they are counted unavailable (the HTTP thread opened its own connection before listening, so this
// is a matter of milliseconds, unless Redis went away in between).
const MAX_WAITING = 10_000;
const OPEN_WAIT_ON_CLOSE_MS = 2_000;
let waiting: RawPixel[] = [];
let queues: Queues | undefined;
let sink: PixelSink | undefined;
// BullMQ asks Redis its version when a queue is made, and a producer connection does not wait for
// the connection: the queues are made once it is ready. ioredis keeps retrying a failed connect.
const opened = new Promise<void>((resolve) => {
  redis.once('ready', () => {
    queues = new Queues(redis, data.prefix, Buffer.from(data.sealingKey));
    // Gathered for 10 ms rather than the API's 2: nothing waits for these writes, and fewer, larger
    // jobs cost the thread and Redis less.
    sink = new PixelSink(new EnqueueBatcher(queues, { maxItems: 500, maxDelayMs: 10 }), report);
    sink.take(waiting);
    waiting = [];
    resolve();
  });
});
redis.connect().catch(() => undefined);

function take(items: readonly RawPixel[]): void {
  if (sink) return sink.take(items);
  const room = Math.max(0, MAX_WAITING - waiting.length);
  waiting.push(...items.slice(0, room));
  if (items.length > room) report({ accepted: 0, refused: { unavailable: items.length - room } });
}

async function close(): Promise<void> {
  // Pixels handed over before the connection opened are still written, if it opens in time.
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([opened, new Promise((resolve) => (timer = setTimeout(resolve, OPEN_WAIT_ON_CLOSE_MS)))]);
  clearTimeout(timer);
  if (waiting.length > 0) report({ accepted: 0, refused: { unavailable: waiting.length } });
  waiting = [];
  await sink?.drain().catch(() => undefined);
  await queues?.close().catch(() => undefined);
  await redis.quit().catch(() => redis.disconnect());
}

port.on('message', (message: ToPixelThread) => {
  if (message.kind === 'pixels') take(decodePixels(message.pixels));
  else void close().finally(() => port.postMessage({ kind: 'drained' }));
});

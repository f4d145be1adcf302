import type { FastifyInstance } from 'fastify';
import path from 'node:path';
import { createSource } from '../../engine/ingest/sources';
import { buildHttpServer } from '../../engine/http/server';
import { type RawPixel, SIMPLE_FORM } from '../../engine/ingest/pixel-event';
import { PixelIntake } from '../../engine/ingest/pixel-intake';
import { PixelSink, type PixelTally } from '../../engine/ingest/pixel-sink';
import { EnqueueBatcher } from '../../engine/ingest/enqueue-batcher';
import { queueSealingKey, unseal } from '../../engine/queues/sealing';
import type { AcceptedEvent } from '../../schemas/segment';
import { listen } from '../support/http';
import { openTestServices, type TestServices } from '../support/services';
import { waitFor } from '../support/wait';

/** Every event in the events queue's waiting jobs, unsealed. */
async function queuedEvents(t: TestServices): Promise<AcceptedEvent[]> {
  const jobs = await t.services.queues.queue('events').getJobs(['wait'], 0, -1);
  const key = queueSealingKey(t.services.keys.master);
  return jobs.flatMap((job) => (unseal(key, 'events/ingest', job.data) as { events: AcceptedEvent[] }).events);
}

async function metric(base: string, line: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found ? Number(found.split(' ')[1]) : 0;
}

describe('the pixel intake thread', () => {
  let t: TestServices;
  beforeEach(async () => {
    t = await openTestServices();
  });
  afterEach(async () => {
    await t.close();
  });

  it('takes pixels off the HTTP thread and enqueues them checked, minimized and sealed, each counted once', async () => {
    const app: FastifyInstance = await buildHttpServer(t.services);
    const base = await listen(app);
    const { writeKey, id: sourceId } = await createSource(t.services.databases.db, 'site');
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          fetch(`${base}/t.gif?wk=${writeKey}&t=page&aid=visitor-${i}&mid=m-${i}&url=${encodeURIComponent(`https://shop.example/p/${i}`)}&title=Page+${i}`, {
            headers: { 'x-forwarded-for': '203.0.113.77', 'sec-gpc': i % 2 === 0 ? '1' : '0' },
          }),
        ),
      );
      // A bad event is refused by the thread, after the GIF went out.
      const bad = await fetch(`${base}/t.gif?wk=${writeKey}&t=track&aid=visitor-x`);
      expect([...answers, bad].map((r) => r.status)).toEqual(Array(41).fill(200));
      await waitFor(async () => (await metric(base, 'consentflow_ingest_events_total{endpoint="pixel",outcome="accepted"}')) === 40, { what: '40 accepted pixels' });
      await waitFor(async () => (await metric(base, 'consentflow_pixel_rejected_total{reason="invalid_event"}')) === 1, { what: 'one refused pixel' });
      const events = await queuedEvents(t);
      expect(events).toHaveLength(40);
      const first = events.find((e) => e.messageId === 'm-0');
      expect(first).toMatchObject({
        sourceId,
        messageId: 'm-0',
        signals: { gpc: true, dnt: false },
        event: { type: 'page', anonymousId: 'visitor-0', properties: { url: 'https://shop.example/p/0', title: 'Page 0' } },
      });
      expect(events.find((e) => e.messageId === 'm-1')?.signals.gpc).toBe(false);
      // The test server trusts no proxy: the address is the socket's, cut to its /24 (never the full one).
      expect(first?.ipPrefix).toBe('127.0.0.0');
    } finally {
      await app.close();
    }
  });

  it('writes every pixel it was handed before the server closes', async () => {
    const app = await buildHttpServer(t.services);
    const base = await listen(app);
    const { writeKey } = await createSource(t.services.databases.db, 'site');
    await Promise.all(Array.from({ length: 200 }, (_, i) => fetch(`${base}/t.gif?wk=${writeKey}&aid=v-${i}&mid=close-${i}`)));
    await app.close();
    const ids = new Set((await queuedEvents(t)).map((e) => e.messageId));
    expect(ids.size).toBe(200);
  });

  it('when its thread dies, counts what it held as unavailable, logs it, and takes later pixels on the HTTP thread', async () => {
    const tallies: PixelTally[] = [];
    const report = (tally: PixelTally) => tallies.push(tally);
    const errors: string[] = [];
    const log = { error: (_: unknown, message: string) => errors.push(message) } as never;
    const thread = path.resolve(__dirname, '../../engine/ingest/pixel-thread.ts');
    // The real thread, which dies as the second handful of pixels reaches it.
    const dying = `require(${JSON.stringify(require.resolve('tsx/cjs'))});
      let batches = 0;
      require('node:worker_threads').parentPort.on('message', (m) => { if (m.kind === 'pixels' && ++batches === 2) process.exit(3); });
      require(${JSON.stringify(thread)});`;
    const intake = new PixelIntake({
      thread: { redis: t.services.redisEndpoint, prefix: t.services.queues.prefix, sealingKey: queueSealingKey(t.services.keys.master), logLevel: 'silent' },
      inline: new PixelSink(new EnqueueBatcher(t.services.queues), report),
      report,
      log,
      script: { file: dying, eval: true },
    });
    const pixel = (id: string): RawPixel => [SIMPLE_FORM, '00000000-0000-4000-8000-000000000001', `aid=v&mid=${id}`, 'page', '198.51.100.7', 0, Date.now()];
    const total = () => tallies.reduce((n, x) => n + x.accepted + (x.refused.unavailable ?? 0), 0);
    for (let i = 0; i < 5; i++) intake.submit(pixel(`a-${i}`));
    await waitFor(async () => total() === 5, { what: 'the first five reported' });
    for (let i = 0; i < 3; i++) intake.submit(pixel(`b-${i}`));
    await waitFor(async () => total() === 8, { what: 'the three the thread held counted' });
    for (let i = 0; i < 4; i++) intake.submit(pixel(`c-${i}`));
    await waitFor(async () => total() === 12, { what: 'four more taken inline' });
    await intake.close(5_000);
    expect(tallies.reduce((n, x) => n + (x.refused.unavailable ?? 0), 0)).toBe(3);
    expect(errors).toEqual(['the pixel intake thread ended; the HTTP thread takes the pixels from now on']);
    const ids = (await queuedEvents(t)).map((e) => e.messageId).sort();
    expect(ids).toEqual(['a-0', 'a-1', 'a-2', 'a-3', 'a-4', 'c-0', 'c-1', 'c-2', 'c-3']);
  });
});

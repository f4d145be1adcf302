import { Queue, QueueEvents } from 'bullmq';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { createRedis } from '../../engine/redis/connection';
import { startWorker } from '../../engine/queues/worker';
import type { IngestBatchJob } from '../../schemas/jobs';
import { capturingLogger } from '../support/log-capture';
import { TEST_REDIS_URL, testQueuePrefix } from '../support/env';
import { randomBytes } from 'node:crypto';
import { Queues } from '../../engine/queues/producer';
import { queueSealingKey, seal } from '../../engine/queues/sealing';
import { waitFor } from '../support/wait';

const payload = (n: number): IngestBatchJob => ({
  events: [
    {
      sourceId: '00000000-0000-4000-8000-000000000001',
      messageId: `m-${n}`,
      receivedAt: new Date().toISOString(),
      occurredAt: new Date().toISOString(),
      signals: { gpc: false, dnt: false },
      event: { type: 'track' as const, event: `Event ${n}`, anonymousId: 'a' },
    },
  ],
});

describe('job catalog, producer and worker', () => {
  const prefix = testQueuePrefix();
  const sealingKey = queueSealingKey(randomBytes(32));
  const { log } = capturingLogger('silent');
  let producerConnection: Redis;
  let workerConnection: Redis;
  let queues: Queues;
  const workers: Worker[] = [];

  beforeAll(async () => {
    producerConnection = createRedis({ url: TEST_REDIS_URL }, 'producer', log, 'test-producer');
    await producerConnection.connect();
    workerConnection = createRedis({ url: TEST_REDIS_URL }, 'worker', log, 'test-worker');
    queues = new Queues(producerConnection, prefix, sealingKey);
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()));
    await queues.queue('events').obliterate({ force: true });
  });
  afterAll(async () => {
    await queues.close();
    await producerConnection.quit();
    await workerConnection.quit().catch(() => undefined);
  });

  it('refuses to enqueue a payload that does not match the catalog schema', async () => {
    await expect(
      queues.enqueue('events', 'ingest', { events: [{ ...(payload(1).events[0] as IngestBatchJob['events'][number]), sourceId: 'nope' }] }),
    ).rejects.toThrow(/sourceId/);
    expect(await queues.queue('events').count()).toBe(0);
  });

  it('delivers parsed payloads to the handler and removes completed jobs (no payload outlives processing)', async () => {
    const seen: string[] = [];
    workers.push(
      startWorker('events', { ingest: async (p) => void seen.push(String((p.events[0]?.event as { event?: string } | undefined)?.event)) }, { connection: workerConnection, prefix, log, sealingKey }),
    );
    await queues.enqueueBulk('events', 'ingest', [1, 2, 3].map((n) => ({ payload: payload(n) })));
    await waitFor(() => seen.length === 3, { what: 'three jobs handled' });
    expect(seen.sort()).toEqual(['Event 1', 'Event 2', 'Event 3']);
    await waitFor(async () => (await queues.counts()).events.completed === 0 && (await queues.queue('events').count()) === 0, {
      what: 'queue empty',
    });
    const keys = await producerConnection.keys(`${prefix}:events:*`);
    const jobKeys = keys.filter((k) => /:events:[0-9]+$/.test(k));
    expect(jobKeys).toEqual([]);
  });

  it('deduplicates by deterministic job id', async () => {
    await queues.enqueue('events', 'ingest', payload(1), { jobId: 'same-id' });
    await queues.enqueue('events', 'ingest', payload(2), { jobId: 'same-id' });
    expect(await queues.queue('events').count()).toBe(1);
  });

  it('fails a job whose payload cannot be opened or no longer matches its schema at once, without retries', async () => {
    // A raw BullMQ producer bypasses the typed one, as a stale or foreign producer would.
    const raw = new Queue('events', { connection: producerConnection, prefix });
    const eventsConnection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const events = new QueueEvents('events', { connection: eventsConnection, prefix });
    await events.waitUntilReady();
    let calls = 0;
    workers.push(startWorker('events', { ingest: async () => void calls++ }, { connection: workerConnection, prefix, log, sealingKey }));
    const failures = new Map<string, string>();
    events.on('failed', ({ jobId, failedReason }) => failures.set(jobId, failedReason));
    const cases = [
      [seal(sealingKey, 'events/ingest', { events: [{ sourceId: 42 }] }), 'payload of events/ingest does not match its schema: events.0.sourceId'],
      [{ events: [] }, 'payload of events/ingest: expected a sealed payload'],
      [seal(queueSealingKey(randomBytes(32)), 'events/ingest', payload(1)), 'does not open with this key'],
      [seal(sealingKey, 'email/send', payload(1)), 'does not open with this key'],
    ] as const;
    const jobs = [];
    for (const [data] of cases) jobs.push(await raw.add('ingest', data, { attempts: 5 }));
    await waitFor(() => failures.size === cases.length, { what: 'all four jobs failed' });
    for (const [i, job] of jobs.entries()) {
      expect(failures.get(job.id as string)).toContain(cases[i]?.[1]);
      expect((await raw.getJob(job.id as string))?.attemptsMade).toBe(1);
    }
    expect(calls).toBe(0);
    await events.close();
    await eventsConnection.quit();
    await raw.close();
  });

  it('keeps payloads sealed in Redis: an event waiting in the queue is not readable there', async () => {
    const secret = { ...payload(1), events: [{ ...(payload(1).events[0] as IngestBatchJob['events'][number]), event: { type: 'identify' as const, anonymousId: 'x', traits: { email: 'sealed@example.com' } } }] };
    const id = await queues.enqueue('events', 'ingest', secret);
    const stored = await producerConnection.hgetall(`${prefix}:events:${id}`);
    expect(stored.data).toMatch(/^\{"sealed":"[A-Za-z0-9+/=]+"\}$/);
    expect(JSON.stringify(stored)).not.toContain('sealed@example.com');
  });

  it('drains: closing a worker waits for the job in flight to finish', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = false;
    let finished = false;
    const worker = startWorker(
      'events',
      {
        ingest: async () => {
          started = true;
          await gate;
          finished = true;
        },
      },
      { connection: workerConnection, prefix, log, sealingKey },
    );
    await queues.enqueue('events', 'ingest', payload(1));
    await waitFor(() => started, { what: 'job started' });
    const closing = worker.close();
    let closed = false;
    void closing.then(() => {
      closed = true;
    });
    // The close must still be pending while the job runs.
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    release();
    await closing;
    expect(finished).toBe(true);
    expect((await queues.counts()).events.completed + (await queues.queue('events').count())).toBe(0);
  });
});

import { identityKey } from '../../engine/identity/keys';
import { batchesHolding, createBatchIndex } from '../../engine/privacy/erasure/batch-index';
import { purgeRedis, type RedisPurgeInput } from '../../engine/privacy/erasure/purge-redis';
import { createStreamIndex, deleteStreamEntriesNaming } from '../../engine/privacy/erasure/stream-index';
import { queueSealingKey, seal, unseal } from '../../engine/queues/sealing';
import { normalizeId } from '../../engine/vault/normalize';
import { openTestServices, type TestServices } from '../support/services';

/**
 * Step 4 remembers, per process, which people each kept event batch holds and which uuids each
 * event-stream entry names, so an erasure opens only new batches and reads only new entries. These
 * tests pin that the memory never hides the person: batches rewritten or added after it was built,
 * a job counter reset by a Redis flush, and stream entries added after the last read are all found.
 */

let t: TestServices;
beforeAll(async () => {
  t = await openTestServices();
});
afterAll(async () => t.close());

const userKey = (userId: string) => identityKey(t.services.keys.pseudonym, 'user', normalizeId(userId) as string).id;

function batch(userIds: readonly string[]) {
  const now = new Date().toISOString();
  return {
    events: userIds.map((userId, i) => ({
      sourceId: '00000000-0000-4000-8000-000000000001',
      messageId: `${userId}-${i}`,
      receivedAt: now,
      occurredAt: now,
      signals: { gpc: false, dnt: false },
      event: { type: 'track', userId, event: 'Viewed' },
    })),
  };
}

async function addDelayedBatch(userIds: readonly string[], timestamp?: number) {
  const sealingKey = queueSealingKey(t.services.keys.master);
  return t.services.queues.queue('events').add('ingest', seal(sealingKey, 'events/ingest', batch(userIds)), { delay: 3_600_000, ...(timestamp ? { timestamp } : {}) });
}

function usersIn(data: unknown): string[] {
  const opened = unseal(queueSealingKey(t.services.keys.master), 'events/ingest', data) as ReturnType<typeof batch>;
  return opened.events.map((e) => e.event.userId);
}

const inputFor = (userId: string): RedisPurgeInput => ({ jobs: [], identityIds: new Set([userKey(userId)]), uuids: new Set() });

describe('the per-process index of kept event batches', () => {
  it('opens each batch once, and still finds a person in a batch rewritten or added after it was read', async () => {
    const { queues, redis, keys } = t.services;
    const sealingKey = queueSealingKey(keys.master);
    const index = createBatchIndex();
    const first = await addDelayedBatch(['ada', 'bob', 'cy']);
    const second = await addDelayedBatch(['dee', 'ada']);

    const a = await batchesHolding(queues, redis, sealingKey, keys.pseudonym, new Set([userKey('ada')]), ['delayed'], index);
    expect(a.holding.sort()).toEqual([first.id, second.id].sort());
    expect(a.opened).toBe(2);

    // Nobody's batch is opened again, and one holding nobody asked about is not reported.
    const none = await batchesHolding(queues, redis, sealingKey, keys.pseudonym, new Set([userKey('zed')]), ['delayed'], index);
    expect(none).toEqual({ holding: [], opened: 0 });

    // A batch added later is opened and found; the known ones are not opened again.
    const third = await addDelayedBatch(['bob']);
    const b = await batchesHolding(queues, redis, sealingKey, keys.pseudonym, new Set([userKey('bob')]), ['delayed'], index);
    expect(b.holding.sort()).toEqual([first.id, third.id].sort());
    expect(b.opened).toBe(1);
    await Promise.all([first, second, third].map((job) => job.remove()));
  });

  it('takes the person out through purgeRedis: batches rewritten or removed, other people kept', async () => {
    const { queues, redis, keys } = t.services;
    const sealingKey = queueSealingKey(keys.master);
    const mixed = await addDelayedBatch(['eve', 'fay', 'eve']);
    const alone = await addDelayedBatch(['eve']);
    const purge = (userId: string) => purgeRedis(queues, redis, sealingKey, keys.pseudonym, inputFor(userId));

    const eve = await purge('eve');
    expect(eve).toMatchObject({ eventsRemoved: 3, rewritten: 1, removed: 1, busy: 0 });
    expect(await queues.queue('events').getJob(alone.id as string)).toBeUndefined();
    const kept = await queues.queue('events').getJob(mixed.id as string);
    expect(usersIn(kept?.data)).toEqual(['fay']);

    // The index remembers eve in the rewritten batch (a superset): erasing her again changes nothing.
    expect(await purge('eve')).toMatchObject({ eventsRemoved: 0, rewritten: 0, removed: 0 });
    // fay is found from the same memory, and the now empty batch goes.
    expect(await purge('fay')).toMatchObject({ eventsRemoved: 1, removed: 1 });
    expect(await queues.queue('events').getJob(mixed.id as string)).toBeUndefined();
  });

  it('is not fooled by a job id reused after the job counter was reset (a Redis flush)', async () => {
    const { queues, redis, keys } = t.services;
    const sealingKey = queueSealingKey(keys.master);
    const index = createBatchIndex();
    const before = await addDelayedBatch(['gus']);
    expect((await batchesHolding(queues, redis, sealingKey, keys.pseudonym, new Set([userKey('hal')]), ['delayed'], index)).holding).toEqual([]);
    await before.remove();
    // The counter goes back so the next batch gets the same id, with another creation time.
    await redis.set(queues.queue('events').toKey('id'), String(Number(before.id) - 1));
    const after = await addDelayedBatch(['hal'], before.timestamp + 1);
    expect(after.id).toBe(before.id);
    const found = await batchesHolding(queues, redis, sealingKey, keys.pseudonym, new Set([userKey('hal')]), ['delayed'], index);
    expect(found.holding).toEqual([after.id]);
    await after.remove();
  });
});

describe('the per-process index of BullMQ event streams', () => {
  it('finds entries added after the last read, deletes only the person\'s, and counts what Redis removed', async () => {
    const { redis } = t.services;
    const key = `${t.services.queues.prefix}:test-stream:${Date.now()}`;
    const index = createStreamIndex();
    const mine = '0b0e4a4e-8c1f-4c57-9d6a-5d2b7d6e7a01';
    const other = '6f1a2b3c-4d5e-4f60-8a7b-9c0d1e2f3a4b';
    await redis.xadd(key, '*', 'event', 'added', 'jobId', `send-${mine}`);
    await redis.xadd(key, '*', 'event', 'added', 'jobId', `send-${other}`);
    expect(await deleteStreamEntriesNaming(redis, key, new Set(['11111111-1111-4111-8111-111111111111']), index)).toBe(0);
    // Added after the index read the stream; upper case in the entry still matches.
    await redis.xadd(key, '*', 'event', 'completed', 'jobId', `send-${mine.toUpperCase()}`);
    expect(await deleteStreamEntriesNaming(redis, key, new Set([mine]), index)).toBe(2);
    const left = await redis.xrange(key, '-', '+');
    expect(left.map(([, fields]) => fields.join(' '))).toEqual([`event added jobId send-${other}`]);
    // Deleted by someone else meanwhile: nothing to remove, and nothing counted.
    await redis.xdel(key, left[0]?.[0] as string);
    expect(await deleteStreamEntriesNaming(redis, key, new Set([other]), index)).toBe(0);
    await redis.del(key);
  });
});

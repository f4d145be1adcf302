import { addToOutbox } from '../../engine/outbox/outbox';
import { relayAfterCommit } from '../../engine/outbox/relay-after-commit';
import { openTestServices, type TestServices } from '../support/services';

describe('the outbox relay', () => {
  let env: TestServices;
  beforeAll(async () => {
    env = await openTestServices();
  });
  afterAll(async () => {
    await env.close();
  });

  it('relays all a commit wrote, beyond one relay of 500, as delayed jobs due when their rows say', async () => {
    const { db } = env.services.databases;
    const runAt = new Date(Date.now() + 60_000);
    const entries = Array.from({ length: 1_234 }, (_, i) => ({
      queue: 'journeys' as const,
      job: 'wake' as const,
      jobId: `wake-test-${i}`,
      payload: { enrolmentId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, wakeAt: runAt.toISOString() },
      runAt,
    }));
    await addToOutbox(db, entries);
    await relayAfterCommit(env.services, entries.length);

    const left = await db.selectFrom('app.outbox').select('id').where('relayed_at', 'is', null).execute();
    expect(left).toHaveLength(0);
    const queue = env.services.queues.queue('journeys');
    expect(await queue.getDelayedCount()).toBe(1_234);
    // Each job fires at its add time plus its delay: within a relay's length of run_at, never early.
    for (const id of ['wake-test-0', 'wake-test-1233']) {
      const job = await queue.getJob(id);
      const firesAt = (job?.timestamp ?? 0) + (job?.delay ?? 0);
      expect(firesAt).toBeGreaterThanOrEqual(runAt.getTime() - 5);
      expect(firesAt - runAt.getTime()).toBeLessThan(50);
    }
  });
});

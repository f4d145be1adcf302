import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { type AnyOutboxEntry, addToOutbox } from '../../engine/outbox/outbox';
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
    const started = Date.now();
    await relayAfterCommit(env.services, entries.length);
    const took = Date.now() - started;

    const left = await db.selectFrom('app.outbox').select('id').where('relayed_at', 'is', null).execute();
    expect(left).toHaveLength(0);
    const queue = env.services.queues.queue('journeys');
    expect(await queue.getDelayedCount()).toBe(1_234);
    // Each job fires at its add time plus its delay: within the relay's length of run_at, never early.
    for (const id of ['wake-test-0', 'wake-test-1233']) {
      const job = await queue.getJob(id);
      const firesAt = (job?.timestamp ?? 0) + (job?.delay ?? 0);
      expect(firesAt).toBeGreaterThanOrEqual(runAt.getTime() - 5);
      expect(firesAt - runAt.getTime()).toBeLessThanOrEqual(took);
    }
  });
  it("relays a broadcast page's rows in one pipelined add, not one a relay of 500", async () => {
    const { db } = env.services.databases;
    const runAt = new Date(Date.now() + 3_600_000);
    const entries = Array.from({ length: 2_000 }, () => {
      const sendId = randomUUID();
      return { queue: 'email' as const, job: 'send' as const, jobId: `send-${sendId}`, payload: { sendId }, runAt };
    });
    await addToOutbox(db, entries);
    const adds = jest.spyOn(env.services.queues, 'enqueueBulk');
    try {
      await relayAfterCommit(env.services, entries.length);
      expect(adds.mock.calls.map(([queue, job, jobs]) => [queue, job, jobs.length])).toEqual([['email', 'send', 2_000]]);
    } finally {
      adds.mockRestore();
    }
    expect(await db.selectFrom('app.outbox').select('id').where('relayed_at', 'is', null).execute()).toHaveLength(0);
    const job = await env.services.queues.queue('email').getJob(entries[1_999]?.jobId as string);
    expect(job?.data).toEqual(entries[1_999]?.payload);
  });

  it('writes rows of several queues in one statement, past the 65,535 parameters a multi-row insert could bind', async () => {
    const { db } = env.services.databases;
    const runAt = new Date(Date.now() + 3_600_000);
    const entries: AnyOutboxEntry[] = Array.from({ length: 15_000 }, (_, i) => {
      const id = randomUUID();
      return i % 15 === 0
        ? { queue: 'journeys', job: 'wake', jobId: `wake-${id}-${runAt.getTime()}`, payload: { enrolmentId: id, wakeAt: runAt.toISOString() }, runAt }
        : { queue: 'email', job: 'send', jobId: `send-${id}`, payload: { sendId: id }, runAt };
    });
    const before = Number((await sql<{ n: string }>`select count(*)::text as n from app.outbox`.execute(db)).rows[0]?.n);
    await db.transaction().execute((trx) => addToOutbox(trx, entries));
    const rows = await sql<{ queue: string; n: string }>`select queue, count(*)::text as n from app.outbox where relayed_at is null group by queue order by queue`.execute(db);
    expect(rows.rows).toEqual([
      { queue: 'email', n: '14000' },
      { queue: 'journeys', n: '1000' },
    ]);
    const last = entries[14_999] as AnyOutboxEntry;
    const stored = await db.selectFrom('app.outbox').select(['queue', 'job_name', 'job_id', 'payload', 'run_at']).where('job_id', '=', last.jobId).executeTakeFirstOrThrow();
    expect(stored).toEqual({ queue: last.queue, job_name: last.job, job_id: last.jobId, payload: last.payload, run_at: runAt });
    expect(Number((await sql<{ n: string }>`select count(*)::text as n from app.outbox`.execute(db)).rows[0]?.n)).toBe(before + 15_000);
    // Not relayed here: 15,000 jobs would only fill the shared Redis.
    await sql`delete from app.outbox where relayed_at is null`.execute(db);
  });
});

import { sql } from 'kysely';
import { Queue } from 'bullmq';
import { runBroadcastTick, syncBroadcastSchedulers } from '../../engine/automation/broadcasts';
import { processEventBatch } from '../../engine/events/process-batch';
import { relayAfterCommit } from '../../engine/outbox/relay-after-commit';
import { batchDeps } from '../../engine/runtime/batch';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { startTestEngine, type TestEngine } from '../support/engine';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';

const MEMBERS = 10_000;

/** The weekly digest (a cron broadcast) to 10,000 subscribers, with a second scheduler process beside the first. */
describe('a broadcast tick to 10,000 members', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url, DATABASE_POOL_SIZE: '12' }, ['email']);
  }, 120_000);
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });
  const db = () => engine.services.databases.db;

  it('enrols and mails every member once, however many scheduler processes run the tick', async () => {
    // 10,000 people with an address in the vault, through the events path in batches.
    const deps = batchDeps(engine.services);
    const now = new Date().toISOString();
    for (let start = 0; start < MEMBERS; start += 1_000) {
      const batch: AcceptedEvent[] = Array.from({ length: 1_000 }, (_, i) => ({
        sourceId: engine.sourceId,
        messageId: `member-${start + i}`,
        receivedAt: now,
        occurredAt: now,
        signals: { gpc: false, dnt: false },
        event: { type: 'identify', userId: `member-${start + i}`, traits: { email: `member-${start + i}@example.com` } } as SegmentEvent,
      }));
      await processEventBatch(deps, batch);
    }
    // Their consent and membership, set up directly (each has its own tests).
    await sql`insert into app.consent_ledger (profile_id, purpose, decision, occurred_at, source_kind, method)
      select id, 'email_marketing', 'granted', now(), 'admin', 'admin' from app.profiles`.execute(db());
    await sql`insert into app.segment_state (profile_id, segment_id, member, changed_at)
      select id, 'newsletter_subscribers', true, now() from app.profiles
      on conflict (profile_id, segment_id) do update set member = true`.execute(db());

    // Two scheduler processes run the same tick at once (separate connections from the pool).
    const automation = { compiled: engine.services.rules.compiled, catalog: engine.services.rules.purposes };
    const relay = (sends: number) => relayAfterCommit(engine.services, sends);
    const at = new Date();
    const [a, b] = await Promise.all([
      runBroadcastTick(db(), automation, 'weekly_digest', at, { afterPage: relay }),
      runBroadcastTick(db(), automation, 'weekly_digest', at, { afterPage: relay }),
    ]);
    expect(a.members + b.members).toBe(MEMBERS);
    const ticks = await db().selectFrom('app.broadcast_ticks').selectAll().execute();
    expect(ticks.map((t) => [t.campaign_id, t.members, t.finished_at !== null])).toEqual([['weekly_digest', MEMBERS, true]]);
    // Running the tick again (a retried job) enrols nobody twice.
    expect(await runBroadcastTick(db(), automation, 'weekly_digest', at)).toMatchObject({ outcome: 'already_done', members: 0 });
    const counts = await sql<{ sends: string; people: string }>`
      select count(*)::text as sends, count(distinct profile_id)::text as people from app.scheduled_sends where campaign_id = 'weekly_digest'`.execute(db());
    expect(counts.rows[0]).toEqual({ sends: String(MEMBERS), people: String(MEMBERS) });

    // The email worker sends them; each address receives exactly one digest.
    await waitFor(async () => smtp.messages.length >= MEMBERS, { timeoutMs: 240_000, what: `${MEMBERS} digests (${smtp.messages.length} so far)` });
    const perAddress = new Map<string, number>();
    for (const m of smtp.messages) for (const r of m.to) perAddress.set(r, (perAddress.get(r) ?? 0) + 1);
    expect(perAddress.size).toBe(MEMBERS);
    expect([...perAddress.values()].every((n) => n === 1)).toBe(true);
    const states = await sql<{ state: string; n: string }>`select state, count(*)::text as n from app.scheduled_sends group by state`.execute(db());
    expect(states.rows).toEqual([{ state: 'sent', n: String(MEMBERS) }]);
  }, 300_000);
});

describe('broadcast schedulers follow the rules', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({}, ['broadcasts']);
  });
  afterAll(async () => {
    await engine.stop();
  });

  it('keeps one BullMQ job scheduler per broadcast campaign, with its cron and time zone, and drops those no longer in the rules', async () => {
    const queue = new Queue('broadcasts', { connection: engine.services.redis, prefix: engine.services.config.queuePrefix });
    try {
      const schedulers = await waitFor(async () => {
        const list = await queue.getJobSchedulers();
        return list.length > 0 && list;
      }, { what: 'the weekly digest scheduler' });
      expect(schedulers.map((s) => [s.key, s.pattern, s.tz])).toEqual([['broadcast-weekly_digest', '0 9 * * 1', 'Europe/Warsaw']]);
      // Its next tick is the next Monday 09:00 in Warsaw.
      const next = await queue.getJobs(['delayed']);
      expect(next.map((j) => [j.name, j.data])).toEqual([['tick', { campaignId: 'weekly_digest' }]]);
      const at = new Date(next[0]?.timestamp as number + (next[0]?.delay as number));
      expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Warsaw', weekday: 'long', hour: '2-digit', minute: '2-digit' }).format(at)).toBe('Monday 09:00');

      // A rule set without broadcasts: the scheduler goes.
      await syncBroadcastSchedulers(engine.services.queues, { ...engine.services.rules.compiled, scheduled: [] }, engine.services.log);
      expect(await queue.getJobSchedulers()).toEqual([]);
    } finally {
      await queue.close();
    }
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { Queue } from 'bullmq';
import { runBroadcastTick, syncBroadcastSchedulers } from '../../engine/automation/broadcasts';
import { appendLedger } from '../../engine/consent/ledger';
import { processEventBatch } from '../../engine/events/process-batch';
import { findProfileId } from '../../engine/identity/lookup';
import { relayAfterCommit } from '../../engine/outbox/relay-after-commit';
import { batchDeps } from '../../engine/runtime/batch';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { tempDir } from '../support/config';
import { startTestEngine, type TestEngine } from '../support/engine';
import { SHIPPED_RULES_DIR } from '../support/rules';
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
    const relay = (outboxRows: number) => relayAfterCommit(engine.services, outboxRows);
    const at = new Date();
    const [a, b] = await Promise.all([
      runBroadcastTick(db(), automation, 'weekly_digest', at, { afterPage: relay }),
      runBroadcastTick(db(), automation, 'weekly_digest', at, { afterPage: relay }),
    ]);
    expect(a.members + b.members).toBe(MEMBERS);
    // Every outbox row the pages wrote (one a member: its send) went out after its page, none left
    // for the reconciler.
    expect(await db().selectFrom('app.outbox').select('id').where('relayed_at', 'is', null).execute()).toEqual([]);
    const outbox = await sql<{ queue: string; n: string }>`select queue, count(*)::text as n from app.outbox group by queue`.execute(db());
    expect(outbox.rows).toEqual([{ queue: 'email', n: String(MEMBERS) }]);
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

const LOCAL_DIGEST = `id: local_digest
name: Digest at 09:00 in each reader's time zone
purposes: [email_marketing]
trigger:
  schedule: {cron: "0 9 * * 1", timezone: Europe/Warsaw, person_timezone: true}
  segment: newsletter_subscribers
exit:
  event: {name: Digest Muted}
steps:
  - id: issue
    send: {template: weekly_digest}
`;

const LOCAL_DAILY = `id: local_daily
name: Daily note at 09:00 in each reader's time zone
purposes: [email_marketing]
trigger:
  schedule: {cron: "0 9 * * *", person_timezone: true}
  segment: newsletter_subscribers
steps:
  - send: {template: weekly_digest}
`;

/** A broadcast in each person's time zone: one tick in UTC+14, each member's send at 09:00 where they are. */
describe('a broadcast at 09:00 in each member’s time zone', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    const rulesDir = tempDir('cf-rules');
    fs.cpSync(SHIPPED_RULES_DIR, rulesDir, { recursive: true });
    fs.writeFileSync(path.join(rulesDir, 'campaigns', 'local_digest.yaml'), LOCAL_DIGEST);
    fs.writeFileSync(path.join(rulesDir, 'campaigns', 'local_daily.yaml'), LOCAL_DAILY);
    // The broadcasts queue runs (its schedulers are synced at start); no email worker, so sends stay scheduled.
    engine = await startTestEngine({ RULES_DIR: rulesDir }, ['broadcasts']);
  });
  afterAll(async () => {
    await engine.stop();
  });
  const db = () => engine.services.databases.db;
  const automation = () => ({ compiled: engine.services.rules.compiled, catalog: engine.services.rules.purposes });
  const event = (messageId: string, body: Record<string, unknown>): AcceptedEvent => {
    const now = new Date().toISOString();
    return { sourceId: engine.sourceId, messageId, receivedAt: now, occurredAt: now, signals: { gpc: false, dnt: false }, event: body as SegmentEvent };
  };
  /** A subscriber with an address, the given zone (or none), consent to the digest and to analytics, in the segment. */
  const subscriber = async (userId: string, timezone?: string): Promise<string> => {
    const traits = { email: `${userId}@example.com`, ...(timezone ? { timezone } : {}) };
    await processEventBatch(batchDeps(engine.services), [event(`${userId}-identify`, { type: 'identify', userId, traits })]);
    const profileId = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }])) as string;
    await appendLedger(
      db(),
      ['email_marketing', 'analytics'].map((purpose) => ({ profileId, purpose, decision: 'granted' as const, occurredAt: new Date(), sourceKind: 'admin' as const, method: 'admin' as const })),
    );
    await sql`insert into app.segment_state (profile_id, segment_id, member, changed_at) values (${profileId}, 'newsletter_subscribers', true, now())
      on conflict (profile_id, segment_id) do update set member = true`.execute(db());
    return profileId;
  };
  const localTime = (at: Date, zone: string) =>
    new Intl.DateTimeFormat('en-GB', { timeZone: zone, weekday: 'long', hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(at);

  it('keeps its BullMQ job scheduler ticking at the cron in Etc/GMT-14, the earliest zone', async () => {
    const queue = new Queue('broadcasts', { connection: engine.services.redis, prefix: engine.services.config.queuePrefix });
    try {
      const schedulers = await waitFor(async () => {
        const list = await queue.getJobSchedulers();
        return list.length === 3 && list;
      }, { what: 'the three broadcast schedulers' });
      expect(schedulers.map((s) => [s.key, s.pattern, s.tz]).sort()).toEqual([
        ['broadcast-local_daily', '0 9 * * *', 'Etc/GMT-14'],
        ['broadcast-local_digest', '0 9 * * 1', 'Etc/GMT-14'],
        ['broadcast-weekly_digest', '0 9 * * 1', 'Europe/Warsaw'],
      ]);
      const next = (await queue.getJobs(['delayed'])).find((j) => j.data.campaignId === 'local_digest');
      const at = new Date((next?.timestamp as number) + (next?.delay as number));
      expect(localTime(at, 'Etc/GMT-14')).toBe('Monday 09:00:00');
      // Sunday 19:00 UTC: before it is Monday 09:00 anywhere else.
      expect(at.getUTCDay()).toBe(0);
      expect(at.getUTCHours()).toBe(19);
    } finally {
      await queue.close();
    }
  });

  it("schedules each member's send at 09:00 in their own zone, or the campaign's, and an exit before it cancels it", async () => {
    const tokyo = await subscriber('local-tokyo', 'Asia/Tokyo');
    const newYork = await subscriber('local-new-york', 'America/New_York');
    const none = await subscriber('local-none');
    const mars = await subscriber('local-mars', 'Mars/Olympus');
    const trait = await db().selectFrom('app.profiles').select('traits').where('id', '=', tokyo).executeTakeFirstOrThrow();
    expect((trait.traits as Record<string, { v: unknown }>).timezone?.v).toBe('Asia/Tokyo');

    // The tick of Monday 2031-12-01 09:00 in UTC+14, run when it fires: Sunday 19:00 UTC.
    const now = new Date('2031-11-30T19:00:00Z');
    const tick = await runBroadcastTick(db(), automation(), 'local_digest', now);
    expect(tick).toMatchObject({ outcome: 'done', tickAt: now, members: 4, sends: 4 });
    const ticks = await db().selectFrom('app.broadcast_ticks').select(['campaign_id', 'tick_at', 'members']).execute();
    expect(ticks).toEqual([{ campaign_id: 'local_digest', tick_at: now, members: 4 }]);

    const sends = await db().selectFrom('app.scheduled_sends').select(['profile_id', 'step_id', 'due_at', 'state']).where('campaign_id', '=', 'local_digest').execute();
    const dueOf = (profileId: string) => sends.find((s) => s.profile_id === profileId)?.due_at;
    expect(sends).toHaveLength(4);
    expect(dueOf(tokyo)).toEqual(new Date('2031-12-01T00:00:00Z'));
    expect(dueOf(newYork)).toEqual(new Date('2031-12-01T14:00:00Z'));
    // No zone, or one that is not a zone: the campaign's (Warsaw, UTC+1 in December).
    expect(dueOf(none)).toEqual(new Date('2031-12-01T08:00:00Z'));
    expect(dueOf(mars)).toEqual(new Date('2031-12-01T08:00:00Z'));
    expect(localTime(dueOf(tokyo) as Date, 'Asia/Tokyo')).toBe('Monday 09:00:00');
    expect(localTime(dueOf(newYork) as Date, 'America/New_York')).toBe('Monday 09:00:00');
    expect(localTime(dueOf(none) as Date, 'Europe/Warsaw')).toBe('Monday 09:00:00');

    // Each send's job is in the outbox for its own time, and each journey waits for its send (with
    // no job of its own: the rules tick moves it on once its send is due).
    const outbox = await db().selectFrom('app.outbox').select(['job_id', 'run_at']).where('queue', '=', 'email').execute();
    const runAt = new Map(outbox.map((o) => [o.job_id, o.run_at.getTime()]));
    const ids = await db().selectFrom('app.scheduled_sends').select(['id', 'due_at']).where('campaign_id', '=', 'local_digest').execute();
    for (const s of ids) expect(runAt.get(`send-${s.id}`)).toBe(s.due_at.getTime());
    expect(await db().selectFrom('app.outbox').select('job_id').where('queue', '=', 'journeys').execute()).toEqual([]);
    const enrolments = await db().selectFrom('app.enrolments').select(['profile_id', 'state', 'started_at', 'wake_at']).where('campaign_id', '=', 'local_digest').execute();
    expect(enrolments.map((e) => [e.state, e.started_at.getTime(), e.wake_at?.getTime()]).sort()).toEqual(
      [tokyo, newYork, none, mars].map((id) => ['active', now.getTime(), dueOf(id)?.getTime()]).sort(),
    );

    // The enrol decision says when and in which zone.
    const decisions = await db().selectFrom('app.decisions').select(['profile_id', 'reason']).where('rule_id', '=', 'local_digest').where('outcome', '=', 'enrol').execute();
    expect(decisions.find((d) => d.profile_id === tokyo)?.reason).toBe('broadcast to segment newsletter_subscribers at 09:00 Asia/Tokyo (2031-12-01T00:00:00.000Z)');
    expect(decisions.find((d) => d.profile_id === mars)?.reason).toBe(
      "broadcast to segment newsletter_subscribers at 09:00 Europe/Warsaw (2031-12-01T08:00:00.000Z), the campaign's zone: no valid timezone trait",
    );

    // The tick again (a retried job) schedules nothing more.
    expect(await runBroadcastTick(db(), automation(), 'local_digest', now)).toMatchObject({ outcome: 'already_done', members: 0 });

    // New York mutes the digest hours after the tick, before its 09:00: the journey exits and its send is cancelled.
    await processEventBatch(batchDeps(engine.services), [event('local-new-york-mute', { type: 'track', event: 'Digest Muted', userId: 'local-new-york' })]);
    const states = await db().selectFrom('app.scheduled_sends').select(['profile_id', 'state']).where('campaign_id', '=', 'local_digest').execute();
    expect(Object.fromEntries(states.map((s) => [s.profile_id, s.state]))).toEqual({ [tokyo]: 'scheduled', [newYork]: 'cancelled', [none]: 'scheduled', [mars]: 'scheduled' });
  });

  it('reaches a member far behind every day, though the previous issue is still pending when the next tick runs', async () => {
    // Pago Pago is UTC-11: 09:00 there comes 25 hours after 09:00 in UTC+14, an hour after the next daily tick.
    const samoa = await subscriber('local-samoa', 'Pacific/Pago_Pago');
    const first = new Date('2031-11-30T19:00:00Z');
    const second = new Date('2031-12-01T19:00:00Z');
    await runBroadcastTick(db(), automation(), 'local_daily', first);
    await runBroadcastTick(db(), automation(), 'local_daily', second);
    const sends = await db().selectFrom('app.scheduled_sends').select(['due_at', 'state']).where('campaign_id', '=', 'local_daily').where('profile_id', '=', samoa).orderBy('due_at').execute();
    expect(sends).toEqual([
      { due_at: new Date('2031-12-01T20:00:00Z'), state: 'scheduled' },
      { due_at: new Date('2031-12-02T20:00:00Z'), state: 'scheduled' },
    ]);
    const skips = await db().selectFrom('app.decisions').select('reason').where('rule_id', '=', 'local_daily').where('profile_id', '=', samoa).where('outcome', '=', 'skip').execute();
    expect(skips).toEqual([]);
  });
});

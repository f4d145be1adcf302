import fs from 'node:fs';
import path from 'node:path';
import { type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, sql, type UnknownRow } from 'kysely';
import { runBroadcastPage } from '../../engine/automation/broadcast-page';
import { runBroadcastTick } from '../../engine/automation/broadcasts';
import { broadcastEnrolmentsOf } from '../../engine/automation/journeys-store';
import { runDueAutomation } from '../../engine/automation/run-automation';
import { processEventBatch } from '../../engine/events/process-batch';
import { findProfileId } from '../../engine/identity/lookup';
import { createSource } from '../../engine/ingest/sources';
import { relayAfterCommit } from '../../engine/outbox/relay-after-commit';
import { batchDeps } from '../../engine/runtime/batch';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { tempDir } from '../support/config';
import { SHIPPED_RULES_DIR } from '../support/rules';
import { openTestServices, type TestServices } from '../support/services';

/** A digest at 09:00 in each reader's zone, as `page_a` to `page_d` (one campaign a test). */
const digest = (id: string) => `id: ${id}
name: Digest ${id}
purposes: [email_marketing]
trigger:
  schedule: {cron: "0 9 * * 1", timezone: Europe/Warsaw, person_timezone: true}
  segment: newsletter_subscribers
steps:
  - id: issue
    send: {template: weekly_digest}
`;

const ZONES = ['Asia/Tokyo', 'America/New_York', undefined] as const;
const MEMBERS = 240;
/** The tick of Monday 2031-12-01 09:00 in UTC+14, run when it fires: Sunday 19:00 UTC. */
const NOW = new Date('2031-11-30T19:00:00Z');
/** 09:00 on that Monday in each zone; no zone: the campaign's (Warsaw, UTC+1 in December). */
const DUE: Record<string, Date> = {
  'Asia/Tokyo': new Date('2031-12-01T00:00:00Z'),
  'America/New_York': new Date('2031-12-01T14:00:00Z'),
  none: new Date('2031-12-01T08:00:00Z'),
};

/** Counts the statements a Kysely instance runs (each goes through transformResult once). */
class StatementCounter implements KyselyPlugin {
  count = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return args.node;
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    this.count++;
    return args.result;
  }
}

/** Broadcast pages written set-based: a handful of statements a page, one delayed job a member, once per member however the tick runs. */
describe('broadcast pages', () => {
  let env: TestServices;
  let members: Array<{ profileId: string; zone: string }>;
  let outsider: string;
  beforeAll(async () => {
    const rulesDir = tempDir('cf-rules');
    fs.cpSync(SHIPPED_RULES_DIR, rulesDir, { recursive: true });
    for (const id of ['page_a', 'page_b', 'page_c', 'page_d']) fs.writeFileSync(path.join(rulesDir, 'campaigns', `${id}.yaml`), digest(id));
    env = await openTestServices({ RULES_DIR: rulesDir });
    const { db } = env.services.databases;
    // Members in three zones (a third without one), through the events path; and one member who never consented.
    const source = await createSource(db, 'test site');
    const at = new Date().toISOString();
    const identify = (userId: string, traits: Record<string, unknown>): AcceptedEvent => ({
      sourceId: source.id,
      messageId: `${userId}-identify`,
      receivedAt: at,
      occurredAt: at,
      signals: { gpc: false, dnt: false },
      event: { type: 'identify', userId, traits } as SegmentEvent,
    });
    await processEventBatch(batchDeps(env.services), [
      ...Array.from({ length: MEMBERS }, (_, i) => {
        const zone = ZONES[i % ZONES.length];
        return identify(`page-${i}`, { email: `page-${i}@example.com`, ...(zone ? { timezone: zone } : {}) });
      }),
      identify('page-outsider', { email: 'page-outsider@example.com' }),
    ]);
    outsider = (await findProfileId(env.services.databases.vaultDb, env.services.keys, [{ userId: 'page-outsider' }])) as string;
    await sql`insert into app.consent_ledger (profile_id, purpose, decision, occurred_at, source_kind, method)
      select id, 'email_marketing', 'granted', now(), 'admin', 'admin' from app.profiles where id <> ${outsider}`.execute(db);
    await sql`insert into app.segment_state (profile_id, segment_id, member, changed_at)
      select id, 'newsletter_subscribers', true, now() from app.profiles
      on conflict (profile_id, segment_id) do update set member = true`.execute(db);
    const rows = await sql<{ id: string; zone: string | null }>`select id, traits -> 'timezone' ->> 'v' as zone from app.profiles where id <> ${outsider} order by id`.execute(db);
    members = rows.rows.map((r) => ({ profileId: r.id, zone: r.zone ?? 'none' }));
  }, 60_000);
  afterAll(async () => {
    await env.close();
  });
  const db = () => env.services.databases.db;
  const automation = () => ({ compiled: env.services.rules.compiled, catalog: env.services.rules.purposes });
  const relay = (rows: number) => relayAfterCommit(env.services, rows);
  const sendsOf = (campaignId: string) =>
    db().selectFrom('app.scheduled_sends').select(['id', 'profile_id', 'enrolment_id', 'step_id', 'template', 'due_at', 'state']).where('campaign_id', '=', campaignId).execute();

  it("writes a page with the same few statements whatever its size: each member's enrolment, send, outbox row and decisions", async () => {
    expect(members).toHaveLength(MEMBERS);
    const ids = [...members.map((m) => m.profileId), outsider].sort();
    const counter = new StatementCounter();
    const counted = db().withPlugin(counter);
    const page = async (profileIds: string[]) => {
      counter.count = 0;
      const outcome = await counted.transaction().execute((trx) => runBroadcastPage(trx, automation(), 'page_a', NOW, profileIds, NOW));
      return { outcome, statements: counter.count };
    };
    const small = await page(ids.slice(0, 10));
    const large = await page(ids.slice(10));
    expect(large.statements).toBe(small.statements);
    expect(small.statements).toBeLessThanOrEqual(12);
    expect(small.outcome.enrolled + large.outcome.enrolled).toBe(MEMBERS);
    expect(small.outcome.skipped + large.outcome.skipped).toBe(1);
    expect(small.outcome.sends + large.outcome.sends).toBe(MEMBERS);
    // One outbox row a member (the send's); no wake-up: the journey waits for its own send.
    expect(small.outcome.outboxWritten + large.outcome.outboxWritten).toBe(MEMBERS);

    const version = env.services.rules.compiled.campaigns.get('page_a')?.version;
    const enrolments = await db().selectFrom('app.enrolments').selectAll().where('campaign_id', '=', 'page_a').execute();
    const sends = await sendsOf('page_a');
    const outbox = await db().selectFrom('app.outbox').select(['queue', 'job_name', 'job_id', 'payload', 'run_at']).execute();
    expect(enrolments).toHaveLength(MEMBERS);
    expect(sends).toHaveLength(MEMBERS);
    expect(outbox).toHaveLength(MEMBERS);
    const outboxOf = new Map(outbox.map((o) => [o.job_id, o]));
    for (const { profileId, zone } of members) {
      const due = DUE[zone] as Date;
      const enrolment = enrolments.find((e) => e.profile_id === profileId);
      expect(enrolment).toMatchObject({ entry: 1, state: 'active', started_at: NOW, wake_at: due, campaign_version: version, rule_set_version: env.services.rules.compiled.version });
      expect(enrolment?.journey).toEqual({ campaignId: 'page_a', entry: 1, cursor: [0], waiting: { kind: 'wait', until: due.toISOString() }, startedAt: due.toISOString() });
      const send = sends.find((s) => s.profile_id === profileId);
      expect(send).toMatchObject({ enrolment_id: enrolment?.id, step_id: 'issue', template: 'weekly_digest', due_at: due, state: 'scheduled' });
      expect(outboxOf.get(`send-${send?.id}`)).toEqual({ queue: 'email', job_name: 'send', job_id: `send-${send?.id}`, payload: { sendId: send?.id }, run_at: due });
    }

    const decisions = await db().selectFrom('app.decisions').select(['profile_id', 'outcome', 'allowed', 'reason', 'ref', 'purposes']).where('rule_id', '=', 'page_a').orderBy('id').execute();
    expect(decisions).toHaveLength(2 * MEMBERS + 1);
    const tokyo = members.find((m) => m.zone === 'Asia/Tokyo')?.profileId as string;
    const mine = decisions.filter((d) => d.profile_id === tokyo);
    expect(mine.map((d) => [d.outcome, d.allowed, d.reason, d.purposes])).toEqual([
      ['enrol', true, 'broadcast to segment newsletter_subscribers at 09:00 Asia/Tokyo (2031-12-01T00:00:00.000Z)', ['email_marketing']],
      ['step_scheduled', true, 'send weekly_digest at 2031-12-01T00:00:00.000Z', ['email_marketing']],
    ]);
    expect(mine[0]?.ref).toMatchObject({ trigger: `schedule:${NOW.toISOString()}`, entry: 1, start: '2031-12-01T00:00:00.000Z', zone: 'Asia/Tokyo' });
    expect(mine[1]?.ref).toMatchObject({ step: 'issue', entry: 1, at: '2031-12-01T00:00:00.000Z' });
    const skipped = decisions.filter((d) => d.profile_id === outsider);
    expect(skipped.map((d) => [d.outcome, d.allowed])).toEqual([['skip', false]]);
    expect(skipped[0]?.reason).toMatch(/email_marketing/);
  });

  it('keeps one delayed job a member in Redis, the send holding its id alone; the journey moves on at the rules tick once the send is due', async () => {
    const tick = await runBroadcastTick(db(), automation(), 'page_b', NOW, { pageSize: 100, afterPage: relay });
    expect(tick).toMatchObject({ outcome: 'done', members: MEMBERS + 1, sends: MEMBERS });
    // Every row the pages wrote is out by the time the tick returns.
    expect(await db().selectFrom('app.outbox').select('id').where('relayed_at', 'is', null).execute()).toEqual([]);
    const sends = await sendsOf('page_b');
    const email = env.services.queues.queue('email');
    for (const s of sends) {
      const job = await email.getJob(`send-${s.id}`);
      expect(job?.data).toEqual({ sendId: s.id });
      expect((job?.timestamp ?? 0) + (job?.delay ?? 0)).toBeGreaterThanOrEqual(s.due_at.getTime());
    }
    // The first test's rows were never relayed (its pages ran without the tick): they are out now too.
    expect(await email.getDelayedCount()).toBe(2 * MEMBERS);
    const journeys = await env.services.queues.queue('journeys').getJobCounts();
    expect(Object.values(journeys).reduce((a, b) => a + b, 0)).toBe(0);

    // After the last member's 09:00 (New York's), the rules tick completes every journey: no job was needed.
    const later = new Date('2031-12-01T14:00:01Z');
    for (let round = 0; round < 20; round++) {
      const done = await db().transaction().execute((trx) => runDueAutomation(trx, automation(), later));
      if (done.profiles === 0) break;
    }
    const states = await db().selectFrom('app.enrolments').select(['state', 'wake_at']).where('campaign_id', '=', 'page_b').execute();
    expect(states).toHaveLength(MEMBERS);
    expect(states.every((e) => e.state === 'completed' && e.wake_at === null)).toBe(true);
    // The sends themselves are untouched by it: the email worker sends them, checking consent again.
    expect((await sendsOf('page_b')).every((s) => s.state === 'scheduled')).toBe(true);
  });

  it('a tick whose page fails before its commit and is retried enrols every member once, with one send and one job each', async () => {
    // The second page's last statement fails once, after its enrolments, sends and outbox rows were
    // written: the process dying mid-page. A sequence is not rolled back, so the failure happens once.
    await sql`create sequence test_fail_once`.execute(db());
    await sql`create function test_fail_page() returns trigger language plpgsql as $$
      begin
        if old.cursor is not null and new.cursor is distinct from old.cursor and new.campaign_id = 'page_c' and nextval('test_fail_once') = 1 then
          raise exception 'injected: the process died in the middle of a page';
        end if;
        return new;
      end $$`.execute(db());
    await sql`create trigger test_fail_page before update on app.broadcast_ticks for each row execute function test_fail_page()`.execute(db());
    try {
      await expect(runBroadcastTick(db(), automation(), 'page_c', NOW, { pageSize: 50, afterPage: relay })).rejects.toThrow(/injected/);
      const half = await db().selectFrom('app.broadcast_ticks').select(['members', 'finished_at']).where('campaign_id', '=', 'page_c').executeTakeFirstOrThrow();
      expect(half).toEqual({ members: 50, finished_at: null });
      const firstPage = [...members.map((m) => m.profileId), outsider].sort().slice(0, 50);
      expect(await sendsOf('page_c')).toHaveLength(firstPage.filter((id) => id !== outsider).length);

      // The job's retry: the tick goes on after the last committed page.
      expect(await runBroadcastTick(db(), automation(), 'page_c', NOW, { pageSize: 50, afterPage: relay })).toMatchObject({ outcome: 'done', members: MEMBERS + 1 - 50 });
      expect(await runBroadcastTick(db(), automation(), 'page_c', NOW, { pageSize: 50, afterPage: relay })).toMatchObject({ outcome: 'already_done', members: 0 });
    } finally {
      await sql`drop trigger test_fail_page on app.broadcast_ticks`.execute(db());
    }
    const per = await sql<{ enrolments: string; people: string }>`
      select count(*)::text as enrolments, count(distinct profile_id)::text as people from app.enrolments where campaign_id = 'page_c'`.execute(db());
    expect(per.rows[0]).toEqual({ enrolments: String(MEMBERS), people: String(MEMBERS) });
    const sends = await sendsOf('page_c');
    expect(new Set(sends.map((s) => s.profile_id)).size).toBe(MEMBERS);
    expect(sends).toHaveLength(MEMBERS);
    const jobIds = sends.map((s) => `send-${s.id}`);
    const outbox = await db().selectFrom('app.outbox').select(['job_id', 'relayed_at']).where('job_id', 'in', jobIds).execute();
    expect(outbox).toHaveLength(MEMBERS);
    expect(outbox.every((o) => o.relayed_at !== null)).toBe(true);
    const email = env.services.queues.queue('email');
    for (const id of jobIds) expect(await email.getJob(id)).toBeDefined();
    expect(await email.getDelayedCount()).toBe(3 * MEMBERS);
    const tick = await db().selectFrom('app.broadcast_ticks').select(['members', 'finished_at']).where('campaign_id', '=', 'page_c').executeTakeFirstOrThrow();
    expect(tick.members).toBe(MEMBERS + 1);
    expect(tick.finished_at).not.toBeNull();
  });
  it("reads only a member's active and latest entries of the campaign, however many issues they got, and numbers the next after the latest", async () => {
    const [regular, waiting] = members;
    const version = env.services.rules.compiled.campaigns.get('page_d')?.version as string;
    const past = (profileId: string, entry: number, state: 'completed' | 'active') => ({
      campaign_id: 'page_d',
      profile_id: profileId,
      entry,
      campaign_version: version,
      rule_set_version: env.services.rules.compiled.version,
      state,
      journey: JSON.stringify(state === 'active' ? { campaignId: 'page_d', entry, cursor: [0], startedAt: '2031-11-24T08:00:00.000Z' } : null),
      started_at: new Date(Date.UTC(2031, 10, entry)),
      wake_at: null,
      finished_at: state === 'active' ? null : new Date(Date.UTC(2031, 10, entry)),
      finish_reason: state === 'active' ? null : 'all steps done',
    });
    // Two years of weekly issues for one member; another still in an issue that began before this tick.
    await db().insertInto('app.enrolments').values([...Array.from({ length: 104 }, (_, i) => past(regular?.profileId as string, i + 1, 'completed')), past(waiting?.profileId as string, 1, 'active')]).execute();
    const read = await broadcastEnrolmentsOf(db(), 'page_d', [regular?.profileId as string, waiting?.profileId as string]);
    expect(read.get(regular?.profileId as string)?.map((e) => [e.entry, e.state])).toEqual([[104, 'completed']]);
    expect(read.get(waiting?.profileId as string)?.map((e) => [e.entry, e.state])).toEqual([[1, 'active']]);

    await runBroadcastTick(db(), automation(), 'page_d', NOW, { afterPage: relay });
    const entries = await db().selectFrom('app.enrolments').select(['profile_id', 'entry']).where('campaign_id', '=', 'page_d').where('started_at', '=', NOW).execute();
    const entryOf = new Map(entries.map((e) => [e.profile_id, e.entry]));
    expect(entryOf.get(regular?.profileId as string)).toBe(105);
    // Still in an earlier journey of the campaign (one that began before this tick): not enrolled again.
    expect(entryOf.has(waiting?.profileId as string)).toBe(false);
    expect(entries).toHaveLength(MEMBERS - 1);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { type FaultCluster, removeQueueKeys, startFaultCluster } from './harness/cluster';
import { waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { chunks, newLedger, postAll, subscriberEvents } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { faultRules } from './harness/rules';
import { duplicatesBy, type SmtpSink, startSmtpSink } from './harness/smtp-sink';
import { Redis } from 'ioredis';

const PEOPLE = 300;
/** Each person's journey: a welcome now, then a second email after this wait. */
const WAIT = '30s';
const EMAILS = 2 * PEOPLE;

/** Keys under a prefix (the run's own queues). */
async function keysUnder(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  try {
    let cursor = '0';
    let n = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      n += keys.length;
    } while (cursor !== '0');
    return n;
  } finally {
    redis.disconnect();
  }
}

/**
 * Scenario 5 (issue 10): Redis loses everything while sends are scheduled. The shared Redis is not
 * flushed (other people's tests use it): every key under this run's queue prefix is deleted, which is
 * all the engine's processes can see of Redis, so to them it is a FLUSHALL (or a Redis that came back
 * empty). PostgreSQL holds every scheduled send and journey; the reconcilers bring them back: the
 * email worker's minute sweep (engine/email/send-step.ts overdueSends) queues every send still
 * `scheduled` a minute past due, and the events worker's rules tick (workers/events.ts) runs due
 * journeys from PostgreSQL and relays what the outbox has not relayed. Every email goes once. The job
 * schedulers (a broadcast's cron, the retention run) are only in Redis: the broadcasts and
 * maintenance workers upsert a missing one again within a minute (they did not before: found here).
 */
describe('fault 5: Redis data lost with sends scheduled', () => {
  let cluster: FaultCluster;
  let smtp: SmtpSink;
  let api: EngineProcess;
  beforeAll(async () => {
    smtp = await startSmtpSink();
    const rules = faultRules();
    fs.writeFileSync(
      path.join(rules, 'campaigns', 'fault_welcome.yaml'),
      `id: fault_welcome
name: Fault welcome, then a second email
purposes: [email_marketing]
trigger:
  segment_entered: newsletter_subscribers
steps:
  - send:
      template: welcome
  - wait: ${WAIT}
  - send:
      template: weekly_digest
`,
    );
    cluster = await startFaultCluster({ RULES_DIR: rules, SMTP_URL: smtp.url });
    [api] = await Promise.all([cluster.api(), cluster.worker(['events'], 'events'), cluster.worker(['broadcasts', 'maintenance'], 'broadcasts')]);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await smtp?.close();
  });

  it('sends every scheduled email once after the queues are lost', async () => {
    const started = Date.now();
    // No email worker yet: the welcomes are scheduled in PostgreSQL and their jobs wait in Redis.
    await postAll(api.url as string, cluster.writeKey, chunks(subscriberEvents('f', PEOPLE, 1), 50), 2, newLedger());
    await waitOrExplain(
      cluster,
      async () =>
        (await cluster.number("select count(*) from app.scheduled_sends where state = 'scheduled'")) >= PEOPLE && (await cluster.pending('email')) >= PEOPLE,
      `${PEOPLE} welcomes scheduled and queued`,
      120_000,
    );
    const schedulers = async () => ({
      broadcasts: (await cluster.queue('broadcasts').getJobSchedulers()).map((j) => j.key).join(' '),
      maintenance: (await cluster.queue('maintenance').getJobSchedulers()).map((j) => j.key).join(' '),
    });
    const schedulersBefore = await schedulers();
    const before = {
      emailJobs: await cluster.pending('email'),
      journeyJobs: await cluster.pending('journeys'),
      keys: await keysUnder(cluster.redisUrl, cluster.prefix),
      sendsScheduled: await cluster.number("select count(*) from app.scheduled_sends where state = 'scheduled'"),
      enrolmentsActive: await cluster.number("select count(*) from app.enrolments where state not in ('ended', 'exited')"),
    };

    // The fault: every key of this run's queues goes, as a FLUSHALL would take them.
    await removeQueueKeys(cluster.redisUrl, cluster.prefix);
    const lostAt = Date.now();
    const keysAfter = await keysUnder(cluster.redisUrl, cluster.prefix);
    const emailJobsAfter = await cluster.pending('email');
    await cluster.worker(['email', 'journeys'], 'email');

    const sent = () => smtp.messages.filter((m) => m.campaign === 'fault_welcome');
    await waitOrExplain(
      cluster,
      async () =>
        new Set(sent().map((m) => m.messageId)).size >= EMAILS &&
        (await cluster.number("select count(*) from app.scheduled_sends where state in ('scheduled', 'sending')")) === 0,
      `${EMAILS} emails sent after the loss`,
      // The sweep runs every minute and takes sends a minute past due: up to 2 minutes per round.
      300_000,
      () => ({ delivered: sent().length }),
    );
    const recoveryMs = Date.now() - lostAt;
    const byMessageId = duplicatesBy(sent(), (m) => m.messageId);
    const byPersonTemplate = duplicatesBy(sent(), (m) => `${m.to.join(',')} ${m.messageId}`);
    const perPerson = new Map<string, number>();
    for (const m of sent()) perPerson.set(m.to[0] as string, (perPerson.get(m.to[0] as string) ?? 0) + 1);
    const peopleWithTwo = [...perPerson.values()].filter((n) => n === 2).length;
    const sendRows = await cluster.number('select count(*) from app.scheduled_sends');
    const sendDuplicates = await cluster.number(
      'select count(*) from (select enrolment_id, step_id from app.scheduled_sends group by 1, 2 having count(*) > 1) d',
    );
    // The job schedulers (a broadcast's cron, the retention run) lived only in Redis: the workers that
    // keep them upsert them again within a minute (workers/broadcasts.ts, workers/maintenance.ts).
    await waitOrExplain(
      cluster,
      async () => JSON.stringify(await schedulers()) === JSON.stringify(schedulersBefore),
      'the job schedulers back',
      150_000,
      async () => ({ schedulers: await schedulers(), before: schedulersBefore }),
    );
    const schedulersBackMs = Date.now() - lostAt;
    const tickJobs = (await cluster.queue('broadcasts').getJobCounts('delayed', 'wait')) as Record<string, number>;
    const counts = {
      people: PEOPLE,
      emailsDue: EMAILS,
      emailJobsBeforeLoss: before.emailJobs,
      journeyJobsBeforeLoss: before.journeyJobs,
      keysBeforeLoss: before.keys,
      keysAfterLoss: keysAfter,
      emailJobsAfterLoss: emailJobsAfter,
      sendsScheduledBeforeLoss: before.sendsScheduled,
      enrolmentsActiveBeforeLoss: before.enrolmentsActive,
      sendRows,
      sendDuplicates,
      delivered: sent().length,
      distinct: byMessageId.distinct,
      duplicated: byMessageId.extra,
      peopleWithBothEmails: peopleWithTwo,
      schedulersBefore: JSON.stringify(schedulersBefore),
      schedulersBackAfterMs: schedulersBackMs,
      broadcastTickJobsAtEnd: (tickJobs.delayed ?? 0) + (tickJobs.wait ?? 0),
    };
    recordFigure('5-redis-flush', {
      scenario: '5 Redis data lost',
      load: `${PEOPLE} people in a journey (a welcome, a ${WAIT} wait, a second email): ${before.sendsScheduled} sends scheduled, ${before.emailJobs} send jobs queued, no email worker yet`,
      fault: `every key under the run's queue prefix deleted (${before.keys} keys; the shared Redis is not flushed), then an email worker started`,
      lost: EMAILS - byMessageId.distinct,
      duplicated: byMessageId.extra + sendDuplicates,
      recoveryMs,
      counts,
      durationMs: Date.now() - started,
    });
    expect(keysAfter).toBe(0);
    expect(emailJobsAfter).toBe(0);
    expect({ distinct: byMessageId.distinct, duplicated: byMessageId.extra, byPersonTemplate: byPersonTemplate.extra, sendDuplicates }).toEqual({
      distinct: EMAILS,
      duplicated: 0,
      byPersonTemplate: 0,
      sendDuplicates: 0,
    });
    expect(peopleWithTwo).toBe(PEOPLE);
    expect(schedulersBefore).toEqual({ broadcasts: 'broadcast-fault_digest', maintenance: 'retention' });
    // One next tick, not one per upsert.
    expect((tickJobs.delayed ?? 0) + (tickJobs.wait ?? 0)).toBe(1);
    expect(unexpectedExits()).toEqual([]);
  }, 420_000);
});

import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { parseDomainRateLimits } from '../../engine/config/domain-rate-limits';
import { createDomainLimiter, type DomainLimiter } from '../../engine/email/domain-limits';
import { createMailer } from '../../engine/email/mailer';
import { performSend } from '../../engine/email/send-step';
import { relayOutbox } from '../../engine/outbox/outbox';
import { tempDir } from '../support/config';
import { startTestEngine, type TestEngine } from '../support/engine';
import { TEST_REDIS_URL, testQueuePrefix } from '../support/env';
import { rulesWithoutQuietHours, sendDepsOf, subscriberWithWelcome } from '../support/sends';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';

const MINUTE = 60_000;

function limits(text: string) {
  const parsed = parseDomainRateLimits(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.limits;
}

/** Every key under the prefix with its value (strings and hashes): what the privacy checks look at. */
async function keysUnder(redis: Redis, prefix: string): Promise<{ key: string; value: string | null; pttl: number }[]> {
  const keys = await redis.keys(`${prefix}:*`);
  const valueOf = async (key: string) => {
    const type = await redis.type(key);
    return type === 'string' ? redis.get(key) : type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : null;
  };
  return Promise.all(keys.map(async (key) => ({ key, value: await valueOf(key), pttl: await redis.pttl(key) })));
}

describe('the per-domain limiter in Redis (GCRA with reserved turns)', () => {
  let redis: Redis;
  const prefix = testQueuePrefix();
  const pseudonymKey = randomBytes(32);
  const limiter = (text: string) => createDomainLimiter({ redis, prefix, pseudonymKey, limits: limits(text) }) as DomainLimiter;
  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('lets a burst of COUNT through, then gives each further send its own turn, one every UNIT/COUNT', async () => {
    const domains = limiter('example.org=2/m');
    const t0 = new Date('2030-01-01T10:00:00Z');
    const ids = Array.from({ length: 5 }, () => randomUUID());
    const takes = [];
    for (const id of ids) takes.push(await domains.take(`reader@example.org`, id, t0));
    expect(takes).toEqual([
      { ok: true },
      { ok: true },
      { ok: false, until: new Date(t0.getTime() + 0.5 * MINUTE), limit: 'example.org' },
      { ok: false, until: new Date(t0.getTime() + 1 * MINUTE), limit: 'example.org' },
      { ok: false, until: new Date(t0.getTime() + 1.5 * MINUTE), limit: 'example.org' },
    ]);
    // Asking again before its turn: the same turn, no second reservation.
    expect(await domains.take('reader@example.org', ids[2] as string, new Date(t0.getTime() + 1_000))).toMatchObject({ ok: false, until: new Date(t0.getTime() + 0.5 * MINUTE) });
    // At its turn the deferred send goes (a second early is on time, as the claim's `not_due` allows);
    // a newcomer queues behind the turns already given.
    const turn = new Date(t0.getTime() + 0.5 * MINUTE);
    expect(await domains.take('reader@example.org', ids[2] as string, new Date(turn.getTime() - 1_000))).toEqual({ ok: true });
    expect(await domains.take('other.reader@example.org', randomUUID(), turn)).toMatchObject({ ok: false, until: new Date(t0.getTime() + 2 * MINUTE) });
    expect(await domains.take('reader@example.org', ids[3] as string, new Date(t0.getTime() + 1 * MINUTE))).toEqual({ ok: true });
  });

  it('counts a call stamped before one already seen as made at that later time: arrival order costs the burst nothing', async () => {
    // Workers read the clock before the vault and the relay's round trips: calls arrive out of order.
    const domains = limiter('late.example=2/m');
    const t0 = new Date('2030-01-03T10:00:00Z').getTime();
    expect(await domains.take('a@late.example', randomUUID(), new Date(t0 + 20))).toEqual({ ok: true });
    expect(await domains.take('b@late.example', randomUUID(), new Date(t0 + 5))).toEqual({ ok: true });
    expect(await domains.take('c@late.example', randomUUID(), new Date(t0 + 10))).toEqual({ ok: false, until: new Date(t0 + 20 + 0.5 * MINUTE), limit: 'late.example' });
  });

  it('gives every domain not listed its own allowance under *, and leaves domains alone when there is no *', async () => {
    const t0 = new Date('2030-01-02T10:00:00Z');
    const withDefault = limiter('gmail.com=100/s,*=1/s');
    expect(await withDefault.take('a@one.example', randomUUID(), t0)).toEqual({ ok: true });
    expect(await withDefault.take('b@one.example', randomUUID(), t0)).toMatchObject({ ok: false, limit: '*', until: new Date(t0.getTime() + 1_000) });
    expect(await withDefault.take('c@two.example', randomUUID(), t0)).toEqual({ ok: true });

    const listedOnly = limiter('gmail.com=1/h');
    const before = (await keysUnder(redis, prefix)).length;
    for (let i = 0; i < 10; i++) expect(await listedOnly.take(`p${i}@three.example`, randomUUID(), t0)).toEqual({ ok: true });
    expect((await keysUnder(redis, prefix)).length).toBe(before);
    expect(createDomainLimiter({ redis, prefix, pseudonymKey, limits: [] })).toBeUndefined();
  });

  it('keeps keyed hashes only, every key expiring', async () => {
    // Keys of short limits (1/s) may have expired already (PTTL -2): that is the point.
    const keys = (await keysUnder(redis, prefix)).filter((k) => k.pttl !== -2);
    expect(keys.length).toBeGreaterThan(0);
    for (const { key, value, pttl } of keys) {
      expect(`${key} ${value}`).not.toMatch(/example|gmail|one\.|two\.|late/);
      expect(pttl === -1 ? 'no expiry' : 'expires').toBe('expires');
    }
  });
});

describe('per-domain limits, end to end: the email worker, real SMTP, PostgreSQL and Redis', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rulesWithoutQuietHours(), EMAIL_DOMAIN_RATE_LIMITS: 'example.org=2/m' }, ['email']);
  });
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });
  const db = () => engine.services.databases.db;

  it('sends 2 of 5 to a domain over its limit now and defers 3 to its next turns; later each goes out once, none lost', async () => {
    const org = ['ala', 'bea', 'cyd', 'dan', 'eva'].map((n) => `${n}@example.org`);
    const com = ['fox', 'gus'].map((n) => `${n}@example.com`);
    const sends = new Map<string, string>();
    for (const email of [...org, ...com]) sends.set((await subscriberWithWelcome(engine, email.split('@')[0] as string, email)).sendId, email);
    const start = Date.now();
    // The relay puts the seven sends on the email queue; the worker takes them (4 at once).
    expect(await relayOutbox(db(), engine.services.queues)).toBeGreaterThanOrEqual(7);

    const rows = () => db().selectFrom('app.scheduled_sends').selectAll().where('id', 'in', [...sends.keys()]).execute();
    await smtp.waitForMessages(4);
    const deferred = await waitFor(async () => {
      const r = await rows();
      const back = r.filter((s) => s.state === 'scheduled');
      return r.filter((s) => s.state === 'sent').length === 4 && back.length === 3 && back;
    }, { what: '4 sent and 3 deferred' });

    expect(smtp.messages.filter((m) => m.to[0]?.endsWith('@example.com'))).toHaveLength(2);
    expect(smtp.messages.filter((m) => m.to[0]?.endsWith('@example.org'))).toHaveLength(2);
    // Back to scheduled, not attempted, at the domain's next turns: 30 s apart (2 a minute).
    const dues = deferred.map((s) => s.due_at.getTime()).sort((a, b) => a - b);
    expect(dues[0]).toBeGreaterThan(start);
    expect([(dues[1] as number) - (dues[0] as number), (dues[2] as number) - (dues[1] as number)]).toEqual([30_000, 30_000]);
    for (const s of deferred) {
      expect(sends.get(s.id)).toMatch(/@example\.org$/);
      expect(s).toMatchObject({ attempts: 0, claimed_at: null, state_reason: expect.stringContaining('rate limit') });
      expect(s.deferred_from).not.toBeNull();
      expect(s.state_reason).not.toContain('example');
    }
    // Each waits as a delayed job at its turn, relayed through the outbox.
    const queue = engine.services.queues.queue('email');
    const jobIds = deferred.map((s) => `send-${s.id}-${s.due_at.getTime()}`);
    await waitFor(async () => (await Promise.all(jobIds.map(async (id) => (await queue.getJob(id))?.getState()))).every((state) => state === 'delayed'), {
      what: 'the deferred sends as delayed jobs',
    });
    const metric = await engine.services.metrics.registry.getSingleMetricAsString('consentflow_email_domain_deferred_total');
    expect(metric).toContain('consentflow_email_domain_deferred_total{limit="example.org"} 3');
    // The limiter's keys under the queue prefix name no domain.
    for (const { key, value } of await keysUnder(engine.services.redis, engine.services.config.queuePrefix)) expect(`${key} ${value}`).not.toContain('example.');

    // Time moves on (shifted, no waiting): at their turns each deferred send goes out.
    const mailer = createMailer({ smtpUrl: smtp.url, from: engine.services.config.email.from, outboxDir: tempDir('cf-outbox'), log: engine.services.log });
    const limiter = createDomainLimiter({
      redis: engine.services.redis,
      prefix: engine.services.config.queuePrefix,
      pseudonymKey: engine.services.keys.pseudonym,
      limits: engine.services.config.email.domainRateLimits ?? [],
    });
    const deps = sendDepsOf(engine, mailer, { domainLimiter: limiter });
    try {
      // Before its turn a send is not due and nothing goes out.
      const first = deferred.find((s) => s.due_at.getTime() === dues[0]) as (typeof deferred)[number];
      expect(await performSend(deps, first.id, new Date(start))).toEqual({ state: 'not_due' });
      for (const s of [...deferred].sort((a, b) => a.due_at.getTime() - b.due_at.getTime())) {
        expect(await performSend(deps, s.id, s.due_at)).toEqual({ state: 'sent', messageId: `send-${s.id}` });
      }
    } finally {
      await mailer.close();
    }
    expect((await rows()).map((s) => s.state)).toEqual(Array(7).fill('sent'));

    // The delayed jobs fire (promoted now): their sends are done, so nothing goes out twice.
    for (const id of jobIds) await (await queue.getJob(id))?.promote();
    await waitFor(async () => {
      const counts = (await engine.services.queues.counts()).email;
      return counts.wait + counts.delayed + counts.active + counts.prioritized === 0;
    }, { what: 'the promoted jobs done' });
    expect(smtp.messages).toHaveLength(7);
    expect(smtp.messages.map((m) => m.to[0]).sort()).toEqual([...org, ...com].sort());
  });
});

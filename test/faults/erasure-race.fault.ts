import { identityKey } from '../../engine/identity/keys';
import { normalizeEmail, normalizeId } from '../../engine/vault/normalize';
import { runCli } from '../support/cli';
import { basicAuth } from '../support/engine';
import { waitFor } from '../support/wait';
import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { unprocessed, waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { chunks, type Event, inParallel, newLedger, postAll, subscriberEvents } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { faultRules } from './harness/rules';
import { duplicatesBy, type SmtpSink, startSmtpSink } from './harness/smtp-sink';

const PEOPLE = 400;
const ERASED = 20;
/** The email worker's rate: the queued welcomes take about 8 s to go out, the erasures land mid-queue. */
const RATE = 50;
/** Events queued for each erased person (and for as many kept people) while the events worker is stopped. */
const QUEUED_PER_PERSON = 3;

interface ErasureStatus {
  state: string;
  completedAt: string | null;
  signatureValid: boolean | null;
  receipt: { verification: { clean: boolean; findings: unknown[] }; profilesErased: number } | null;
}

const iso = () => new Date().toISOString();

/** Events of a person who already exists: an identify and page views (no consent change). */
function laterEvents(tag: string, userId: string, n: number): Event[] {
  return Array.from({ length: n }, (_, k) =>
    k === 0
      ? { type: 'identify', messageId: `${tag}-${userId}-${k}`, userId, timestamp: iso(), traits: { plan: 'pro' } }
      : { type: 'page', name: 'Later', messageId: `${tag}-${userId}-${k}`, userId, timestamp: iso(), properties: { path: `/later/${k}` } },
  );
}

/**
 * Scenario 8 (issue 10): people are erased (POST /admin/v1/subjects/erase) while their welcome sends
 * are being claimed and sent (the email worker works through the queue at 50/s) and while events of
 * theirs wait in the events queue (the events worker is stopped when they are posted, and started
 * again once every erasure completed). Checked: every erasure completes with a signed receipt whose
 * verification is clean; after the queued events are processed, no profile, identity or event of an
 * erased person exists again (the tombstones of erasure step 1); no message to an erased person was
 * started (MAIL FROM) after their erasure completed; every kept person got their welcome, once.
 */
describe('fault 8: erasure while events are queued and sends are claimed', () => {
  let cluster: FaultCluster;
  let smtp: SmtpSink;
  let api: EngineProcess;
  let events: EngineProcess;
  let officerKey: string;
  beforeAll(async () => {
    smtp = await startSmtpSink();
    cluster = await startFaultCluster({ RULES_DIR: faultRules(), SMTP_URL: smtp.url, EMAIL_RATE_LIMIT: String(RATE) });
    const created = runCli(['keys', 'create', '--role', 'privacy_officer', '--name', 'faults', '--json'], cluster.env);
    if (created.status !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    officerKey = (JSON.parse(created.stdout.trim()) as { key: string }).key;
    [api, events] = await Promise.all([cluster.api(), cluster.worker(['events'], 'events-1'), cluster.worker(['erasure'], 'erasure')]);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await smtp?.close();
  });

  it('erases cleanly, resurrects nobody, and sends nothing after the erasure', async () => {
    const started = Date.now();
    const url = api.url as string;
    const admin = { authorization: `Bearer ${officerKey}`, 'content-type': 'application/json' };
    await postAll(url, cluster.writeKey, chunks(subscriberEvents('x', PEOPLE, 1), 100), 2, newLedger());
    await waitOrExplain(
      cluster,
      async () => (await cluster.number("select count(*) from app.scheduled_sends where state = 'scheduled'")) === PEOPLE && (await cluster.pending('email')) === PEOPLE,
      `${PEOPLE} welcomes queued`,
      120_000,
    );
    await cluster.worker(['email'], 'email');
    await waitFor(() => smtp.messages.length >= PEOPLE / 10, { timeoutMs: 60_000, what: 'the first welcomes out' });

    // Events of theirs wait in the queue: the events worker stops (SIGTERM, drained) before they come.
    events.signal('SIGTERM');
    await events.exited;
    const order = Array.from({ length: PEOPLE }, (_, i) => i).sort(() => Math.random() - 0.5);
    const erased = order.slice(0, ERASED).map((p) => `x-u${p}`);
    const keptWithEvents = order.slice(ERASED, 2 * ERASED).map((p) => `x-u${p}`);
    const queued = [...erased, ...keptWithEvents].flatMap((u) => laterEvents('q', u, QUEUED_PER_PERSON));
    const queuedLedger = await postAll(url, cluster.writeKey, chunks(queued, 20), 2, newLedger());
    const queuedJobs = await cluster.pending('events');

    // The erasures, while the email worker claims and sends.
    const sentBefore = smtp.messages.length;
    const requested = new Map<string, { id: string; answeredAt: number }>();
    const statuses = new Map<number, number>();
    await inParallel(erased, 10, async (userId) => {
      const res = await fetch(`${url}/admin/v1/subjects/erase`, { method: 'POST', headers: admin, body: JSON.stringify({ userId }) });
      const body = (await res.json()) as { id: string };
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status === 202) requested.set(userId, { id: body.id, answeredAt: Date.now() });
    });
    const status = async (id: string) => {
      const res = await fetch(`${url}/admin/v1/erasures/${id}`, { headers: admin });
      return (await res.json()) as ErasureStatus;
    };
    const done = new Map<string, ErasureStatus>();
    await waitOrExplain(
      cluster,
      async () => {
        for (const [userId, r] of requested) {
          if (done.has(userId)) continue;
          const s = await status(r.id);
          if (s.state === 'completed') done.set(userId, s);
        }
        return done.size === ERASED;
      },
      `${ERASED} erasures completed`,
      180_000,
      () => ({ completed: done.size }),
    );
    const sentDuringErasures = smtp.messages.length - sentBefore;

    // The queued events are processed now; the tombstones must keep the erased from coming back.
    const replacement = await cluster.worker(['events'], 'events-2');
    const keptIds = queued.filter((e) => keptWithEvents.includes(e.userId as string)).map((e) => e.messageId);
    await waitOrExplain(
      cluster,
      async () => (await cluster.pending('events')) === 0 && (await unprocessed(cluster, keptIds)).length === 0,
      'the queued events processed',
      120_000,
    );
    await waitOrExplain(
      cluster,
      async () => (await cluster.pending('email')) === 0 && (await cluster.number("select count(*) from app.scheduled_sends where state in ('scheduled', 'sending')")) === 0,
      'every send decided',
      120_000,
    );
    void replacement;

    const key = Buffer.from(cluster.env.PSEUDONYM_KEY as string, 'base64');
    const hashes = erased.flatMap((u) => [
      identityKey(key, 'user', normalizeId(u) as string).hash,
      identityKey(key, 'email', normalizeEmail(`${u}@example.com`) as string).hash,
    ]);
    const identitiesLeft = await cluster.number('select count(*) from vault.identities where hash = any($1::bytea[])', [hashes]);
    const erasedIds = queued.filter((e) => erased.includes(e.userId as string)).map((e) => e.messageId);
    const erasedEventsStored = await cluster.number('select count(*) from app.events where message_id = any($1::text[])', [erasedIds]);
    const profiles = await cluster.number('select count(*) from app.profiles');
    const erasedEmails = new Set(erased.map((u) => `${u}@example.com`));
    const completedAt = new Map([...done].map(([u, s]) => [`${u}@example.com`, new Date(s.completedAt as string).getTime()]));
    const requestedAt = new Map([...requested].map(([u, r]) => [`${u}@example.com`, r.answeredAt]));
    let startedAfterCompletion = 0;
    let startedAfterRequest = 0;
    let deliveredAfterCompletionStartedBefore = 0;
    const violations: string[] = [];
    for (const m of smtp.messages) {
      const to = m.to[0] as string;
      if (!erasedEmails.has(to)) continue;
      const completed = completedAt.get(to) as number;
      if (m.startedAt > completed) {
        startedAfterCompletion++;
        violations.push(`${to}: MAIL FROM ${m.startedAt - completed} ms after the erasure completed`);
      } else if (m.at > completed) deliveredAfterCompletionStartedBefore++;
      if (m.startedAt > (requestedAt.get(to) as number)) startedAfterRequest++;
    }
    const toErased = smtp.messages.filter((m) => erasedEmails.has(m.to[0] as string)).length;
    const keptPeople = new Set(order.slice(ERASED).map((p) => `x-u${p}@example.com`));
    const kept = smtp.messages.filter((m) => keptPeople.has(m.to[0] as string));
    const keptDup = duplicatesBy(kept, (m) => m.to.join(','));
    const clean = [...done.values()].filter((s) => s.receipt?.verification.clean === true && s.signatureValid === true).length;
    const counts = {
      people: PEOPLE,
      erased: ERASED,
      eraseStatuses: JSON.stringify(Object.fromEntries(statuses)),
      queuedEvents: queuedLedger.accepted.size,
      queuedEventJobs: queuedJobs,
      sentDuringErasures,
      receiptsCleanAndSigned: clean,
      identitiesLeft,
      erasedEventsStored,
      profiles,
      emailsToErased: toErased,
      startedAfterRequest,
      startedAfterCompletion,
      deliveredAfterCompletionStartedBefore,
      keptDelivered: keptDup.distinct,
      keptDuplicated: keptDup.extra,
    };
    recordFigure('8-erasure-race', {
      scenario: '8 erasure while events are queued and sends are claimed',
      load: `${PEOPLE} welcome sends going out at ${RATE}/s; ${queuedLedger.accepted.size} events of ${2 * ERASED} people queued, the events worker stopped`,
      fault: `${ERASED} people erased (POST /admin/v1/subjects/erase) mid-queue, then the queued events processed`,
      lost: PEOPLE - ERASED - keptDup.distinct,
      duplicated: keptDup.extra,
      recoveryMs: null,
      counts,
      durationMs: Date.now() - started,
    });
    expect(statuses).toEqual(new Map([[202, ERASED]]));
    expect(queuedJobs).toBeGreaterThan(0);
    expect(clean).toBe(ERASED);
    expect({ identitiesLeft, erasedEventsStored, profiles }).toEqual({ identitiesLeft: 0, erasedEventsStored: 0, profiles: PEOPLE - ERASED });
    expect(violations).toEqual([]);
    expect({ delivered: keptDup.distinct, duplicated: keptDup.extra }).toEqual({ delivered: PEOPLE - ERASED, duplicated: 0 });
    expect(unexpectedExits()).toEqual([]);
  }, 480_000);
});

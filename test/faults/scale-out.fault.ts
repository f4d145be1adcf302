import { identityKey } from '../../engine/identity/keys';
import { normalizeEmail, normalizeId } from '../../engine/vault/normalize';
import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { effectDuplicates, eventIntegrity, waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { chunks, type Event, inParallel, newLedger, type PostLedger, postAll, subscriberEvents } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { faultRules } from './harness/rules';
import { duplicatesBy, type SmtpSink, startSmtpSink } from './harness/smtp-sink';

/** The broadcast's audience, subscribed before the load. */
const AUDIENCE = 500;
/** People of the load, each seen through both APIs at once. */
const PEOPLE = 1_500;
/** Welcomes to the audience and to the people of the load, and the digest to the audience. */
const EMAILS = AUDIENCE + PEOPLE + AUDIENCE;
const WORKER_QUEUES = ['events', 'email', 'broadcasts', 'journeys'] as const;

const iso = () => new Date().toISOString();

/**
 * One person's events, split between the two APIs so that each API sees the same person at the same
 * time, by each of their identifiers: an anonymous page view, the consent (anonymous id, user id and
 * address together: the event that joins them) sent through BOTH APIs with one messageId, an identify
 * with the address again, an anonymous track, a page by user id only. With `linkByDefault` rules
 * every event is stored on a profile whatever order the workers take them in, so any race between
 * the workers over one person would show as a second profile.
 */
function personEvents(p: number): { a: Event[]; b: Event[]; both: Event[] } {
  const anonymousId = `so-a${p}`;
  const userId = `so-u${p}`;
  const email = `${userId}@example.com`;
  const id = (k: number) => `so-p${p}-e${k}`;
  const [first, second]: Event[][] = [[], []];
  const to = (k: number) => ((p + k) % 2 === 0 ? (first as Event[]) : (second as Event[]));
  to(0).push({ type: 'page', name: 'Landing', messageId: id(0), anonymousId, timestamp: iso(), properties: { path: '/' } });
  const consent: Event = {
    type: 'track',
    event: 'Consent Updated',
    messageId: id(1),
    anonymousId,
    userId,
    timestamp: iso(),
    properties: { purposes: { email_marketing: true, profiling: true, analytics: true }, notice: { id: 'account_settings', version: 1 } },
    context: { traits: { email } },
  };
  to(2).push({ type: 'identify', messageId: id(2), userId, anonymousId, timestamp: iso(), traits: { email, plan: p % 2 ? 'pro' : 'free' } });
  to(3).push({ type: 'track', event: 'Article Read', messageId: id(3), anonymousId, timestamp: iso(), properties: { article: `a${p}` } });
  to(4).push({ type: 'page', name: 'Article', messageId: id(4), userId, timestamp: iso(), properties: { path: `/a/${p}` } });
  return { a: first as Event[], b: second as Event[], both: [consent] };
}

/**
 * Scale-out (issue 10): two API processes and three identical worker processes (events, email,
 * broadcasts, journeys each) on one Redis and one PostgreSQL, no fault but the concurrency itself.
 * The same people arrive through both APIs at once (anonymous ids, user ids and addresses), one copy
 * of each consent event through each API, while a broadcast goes out: one profile per person, one
 * enrolment and one send per person and campaign step, one email per recipient and step (by
 * Message-ID and by recipient), every accepted event stored once.
 */
describe('scale-out: 2 APIs and 3 workers on one Redis and one PostgreSQL', () => {
  let cluster: FaultCluster;
  let smtp: SmtpSink;
  let apis: EngineProcess[];
  let workers: EngineProcess[];
  beforeAll(async () => {
    smtp = await startSmtpSink();
    cluster = await startFaultCluster({ RULES_DIR: faultRules({ linkByDefault: true }), SMTP_URL: smtp.url });
    apis = await Promise.all([cluster.api('api-1'), cluster.api('api-2')]);
    workers = await Promise.all([1, 2, 3].map((n) => cluster.worker(WORKER_QUEUES, `worker-${n}`)));
  }, 180_000);
  afterAll(async () => {
    await cluster?.close();
    await smtp?.close();
  });

  it('keeps one profile, one enrolment, one send and one email per person and step, and every event once', async () => {
    const started = Date.now();
    const urls = apis.map((a) => a.url as string);
    const ledgers: PostLedger[] = urls.map(() => newLedger());
    const sent = (campaign: string) => smtp.messages.filter((m) => m.campaign === campaign).length;

    // The audience, half through each API.
    const audience = subscriberEvents('sa', AUDIENCE, 2, 'digest');
    const audienceBatches = chunks(audience, 50);
    await Promise.all(urls.map((url, i) => postAll(url, cluster.writeKey, audienceBatches.filter((_, n) => n % 2 === i), 2, ledgers[i])));
    await waitOrExplain(
      cluster,
      async () => (await cluster.number("select count(*) from app.segment_state where segment_id = 'fault_audience' and member")) === AUDIENCE,
      "the broadcast's audience in its segment",
      90_000,
    );

    // The load: every person through both APIs at once, and the broadcast's tick meanwhile.
    const loadStarted = Date.now();
    const people = Array.from({ length: PEOPLE }, (_, p) => personEvents(p));
    const viaA = people.flatMap((x) => [...x.a, ...x.both]);
    const viaB = people.flatMap((x) => [...x.b, ...x.both]);
    await cluster.queue('broadcasts').add('tick', { campaignId: 'fault_digest' }, { jobId: 'scale-out-digest-tick', attempts: 10, backoff: { type: 'exponential', delay: 5_000 } });
    // Batches of 25 in person order, so that a person's events reach both APIs within moments of each other.
    await inParallel([0, 1], 2, async (i) => {
      await postAll(urls[i] as string, cluster.writeKey, chunks(i === 0 ? viaA : viaB, 25), 4, ledgers[i]);
    });
    const postedMs = Date.now() - loadStarted;
    const accepted = new Set(ledgers.flatMap((l) => [...l.accepted]));
    const copiesAccepted = ledgers.reduce((n, l) => n + l.accepted.size, 0);
    const distinctEvents = audience.length + 5 * PEOPLE;
    expect(accepted.size).toBe(distinctEvents);

    await waitOrExplain(
      cluster,
      async () =>
        (await cluster.number('select count(*) from app.event_receipts')) === distinctEvents &&
        (await cluster.number("select count(*) from app.scheduled_sends where state = 'sent'")) === EMAILS &&
        smtp.messages.length >= EMAILS,
      'every event stored and every email sent',
      180_000,
      () => ({ welcomes: sent('fault_welcome'), digests: sent('fault_digest') }),
    );
    const doneMs = Date.now() - loadStarted;

    const integrity = await eventIntegrity(cluster, accepted);
    const profiles = await cluster.number('select count(*) from app.profiles');
    // Each person's identifiers (blind indexes, as the engine computes them) must all lead to one profile.
    const key = Buffer.from(cluster.env.PSEUDONYM_KEY as string, 'base64');
    const owners = new Map<string, string>();
    const hashes: Buffer[] = [];
    for (let p = 0; p < PEOPLE; p++) {
      for (const k of [
        identityKey(key, 'anonymous', normalizeId(`so-a${p}`) as string),
        identityKey(key, 'user', normalizeId(`so-u${p}`) as string),
        identityKey(key, 'email', normalizeEmail(`so-u${p}@example.com`) as string),
      ]) {
        owners.set(k.hash.toString('hex'), `p${p}`);
        hashes.push(k.hash);
      }
    }
    const identities = await cluster.rows<{ hash: Buffer; profile_id: string }>('select hash, profile_id from vault.identities where hash = any($1::bytea[])', [hashes]);
    const profilesOf = new Map<string, Set<string>>();
    for (const row of identities) {
      const person = owners.get(row.hash.toString('hex')) as string;
      let set = profilesOf.get(person);
      if (!set) profilesOf.set(person, (set = new Set()));
      set.add(row.profile_id);
    }
    const peopleSplit = [...profilesOf.values()].filter((s) => s.size > 1).length;
    const { ledgerDuplicates, enrolDuplicates, sendDuplicates } = await effectDuplicates(cluster);
    const byMessageId = duplicatesBy(smtp.messages, (m) => m.messageId);
    const byPerson = duplicatesBy(smtp.messages, (m) => `${m.campaign} ${m.to.join(',')}`);
    const failed = Object.fromEntries(await Promise.all(['events', 'email', 'broadcasts', 'journeys'].map(async (q) => [q, (await cluster.jobCounts(q)).failed] as const)));
    const rejections = await cluster.number('select count(*) from app.event_rejections');
    const counts = {
      apis: 2,
      workers: 3,
      copiesPosted: audience.length + 6 * PEOPLE,
      copiesAccepted,
      acceptedPerApi: ledgers.map((l) => l.accepted.size).join(' + '),
      distinctAccepted: accepted.size,
      stored: integrity.stored,
      eventsLost: integrity.lost.length,
      eventsDuplicated: integrity.duplicated,
      rejections,
      profiles,
      identityRows: identities.length,
      peopleWithOneProfile: [...profilesOf.values()].filter((s) => s.size === 1).length,
      peopleSplit,
      ledgerDuplicates,
      enrolDuplicates,
      sendDuplicates,
      emailsDue: EMAILS,
      emailsSent: smtp.messages.length,
      emailsDistinct: byMessageId.distinct,
      emailsDuplicated: byMessageId.extra,
      emailsDuplicatedPerPerson: byPerson.extra,
      // Every worker took a share of the sends (each logs one line per email it delivered).
      emailsPerWorker: workers.map((w) => w.count(/"msg":"email delivered"/)).join(' + '),
      welcomes: sent('fault_welcome'),
      digests: sent('fault_digest'),
      failedJobs: JSON.stringify(failed),
      postMs: postedMs,
      loadToDoneMs: doneMs,
    };
    recordFigure('11-scale-out', {
      scenario: '11 scale-out: 2 APIs, 3 workers',
      load: `${AUDIENCE.toLocaleString('en')} subscribers, then ${PEOPLE.toLocaleString('en')} people through both APIs at once (anonymous id, user id and address each through both; the consent event once through each), ${(audience.length + 6 * PEOPLE).toLocaleString('en')} events posted, a broadcast meanwhile; ${EMAILS.toLocaleString('en')} emails due`,
      fault: 'none but the concurrency: every worker runs events, email, broadcasts and journeys',
      lost: integrity.lost.length + (EMAILS - byMessageId.distinct),
      duplicated: integrity.duplicated + byMessageId.extra + byPerson.extra + peopleSplit + (profiles - AUDIENCE - PEOPLE) + ledgerDuplicates + enrolDuplicates + sendDuplicates,
      recoveryMs: null,
      counts,
      durationMs: Date.now() - started,
    });
    expect(counts).toMatchObject({
      eventsLost: 0,
      eventsDuplicated: 0,
      rejections: 0,
      profiles: AUDIENCE + PEOPLE,
      identityRows: 3 * PEOPLE,
      peopleWithOneProfile: PEOPLE,
      peopleSplit: 0,
      ledgerDuplicates: 0,
      enrolDuplicates: 0,
      sendDuplicates: 0,
      emailsSent: EMAILS,
      emailsDistinct: EMAILS,
      emailsDuplicated: 0,
      emailsDuplicatedPerPerson: 0,
    });
    expect(failed).toEqual({ events: 0, email: 0, broadcasts: 0, journeys: 0 });
    for (const l of ledgers) expect(l.serverErrors).toEqual([]);
    for (const w of workers) expect(w.count(/"msg":"email delivered"/)).toBeGreaterThan(0);
    expect(unexpectedExits()).toEqual([]);
  });
});

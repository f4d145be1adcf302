import { basicAuth } from '../support/engine';
import { waitFor } from '../support/wait';
import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { waitOrExplain } from './harness/counts';
import { recordFigure } from './harness/figures';
import { chunks, inParallel, newLedger, postAll, subscriberEvents } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { faultRules } from './harness/rules';
import { duplicatesBy, type SmtpSink, startSmtpSink } from './harness/smtp-sink';

const PEOPLE = 5_000;
const WITHDRAWING = 500;
/** The email worker's global rate: the queued sends take about 25 s to go out. */
const RATE = 200;

/**
 * Scenario 7 (issue 10): 5,000 welcome sends queued; while the email worker works through them,
 * 500 of the people withdraw consent to marketing email (POST /v1/consent). After a withdrawal has
 * committed (the API answers only then), no send of that person is claimed: a send that still goes
 * out was claimed before the commit (in flight at the relay), and is counted as such.
 */
describe('fault 7: consent withdrawn while sends are queued', () => {
  let cluster: FaultCluster;
  let smtp: SmtpSink;
  let api: EngineProcess;
  beforeAll(async () => {
    smtp = await startSmtpSink();
    cluster = await startFaultCluster({ RULES_DIR: faultRules(), SMTP_URL: smtp.url, EMAIL_RATE_LIMIT: String(RATE) });
    [api] = await Promise.all([cluster.api(), cluster.worker(['events'], 'events')]);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await smtp?.close();
  });

  it('sends nothing claimed after a withdrawal committed, and everything else once', async () => {
    const started = Date.now();
    const url = api.url as string;
    await postAll(url, cluster.writeKey, chunks(subscriberEvents('w', PEOPLE, 1), 100), 4, newLedger());
    // Every welcome scheduled and its job in the email queue, before any email worker runs.
    await waitOrExplain(
      cluster,
      async () => (await cluster.number("select count(*) from app.scheduled_sends where state = 'scheduled'")) === PEOPLE && (await cluster.pending('email')) === PEOPLE,
      `${PEOPLE} sends queued`,
      120_000,
    );
    await cluster.worker(['email'], 'email');
    await waitFor(() => smtp.messages.length >= PEOPLE / 20, { timeoutMs: 60_000, what: 'the first sends out' });

    // People at random withdraw while the rest of the queue goes out.
    const order = Array.from({ length: PEOPLE }, (_, i) => i).sort(() => Math.random() - 0.5);
    const withdrawing = order.slice(0, WITHDRAWING);
    const committedAt = new Map<string, number>();
    const statuses = new Map<number, number>();
    const withdrawStart = Date.now();
    await inParallel(withdrawing, 24, async (p) => {
      const res = await fetch(`${url}/v1/consent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basicAuth(cluster.writeKey) },
        body: JSON.stringify({ userId: `w-u${p}`, withdraw: ['email_marketing'] }),
      });
      await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.ok) committedAt.set(`w-u${p}@example.com`, Date.now());
    });
    const withdrawMs = Date.now() - withdrawStart;
    const sentWhenWithdrawalsDone = smtp.messages.length;

    // The queue runs dry: every send sent, skipped or cancelled, none left scheduled or claimed.
    await waitOrExplain(
      cluster,
      async () => (await cluster.number("select count(*) from app.scheduled_sends where state in ('scheduled', 'sending')")) === 0 && (await cluster.pending('email')) === 0,
      'every send decided',
      120_000,
      () => ({ delivered: smtp.messages.length }),
    );

    const claims = new Map(
      (await cluster.rows<{ id: string; claimed_at: Date | null }>("select id, claimed_at from app.scheduled_sends where state = 'sent'")).map((r) => [
        `<send-${r.id}@consentflow>`,
        r.claimed_at?.getTime() ?? 0,
      ]),
    );
    let violations = 0;
    let inFlight = 0;
    let toWithdrawn = 0;
    const violationDetails: string[] = [];
    for (const m of smtp.messages) {
      const to = m.to[0] as string;
      const committed = committedAt.get(to);
      if (committed === undefined) continue;
      toWithdrawn++;
      const claimedAt = claims.get(m.messageId) ?? Number.POSITIVE_INFINITY;
      if (claimedAt > committed) {
        violations++;
        violationDetails.push(`${to}: claimed ${claimedAt - committed} ms after the withdrawal's answer`);
      } else if (m.at > committed) inFlight++;
    }
    // Of the withdrawn people's sends: those the withdrawal stopped (skipped or cancelled when claimed).
    const stopped = await cluster.number("select count(*) from app.scheduled_sends where state in ('skipped', 'cancelled')");
    const keptPeople = new Set(order.slice(WITHDRAWING).map((p) => `w-u${p}@example.com`));
    const deliveredToKept = new Set(smtp.messages.map((m) => m.to[0] as string).filter((to) => keptPeople.has(to)));
    const dup = duplicatesBy(smtp.messages, (m) => m.messageId);
    const states = Object.fromEntries(
      (await cluster.rows<{ state: string; n: string }>('select state, count(*)::text as n from app.scheduled_sends group by state')).map((r) => [r.state, Number(r.n)]),
    );
    const counts = {
      sendsQueued: PEOPLE,
      withdrawals: committedAt.size,
      withdrawalStatuses: JSON.stringify(Object.fromEntries(statuses)),
      withdrawalsTookMs: withdrawMs,
      sentWhenWithdrawalsDone,
      delivered: smtp.messages.length,
      withdrawnSendsStopped: stopped,
      withdrawnSendsClaimedBefore: toWithdrawn,
      deliveredAfterCommitClaimedBefore: inFlight,
      claimedAfterCommit: violations,
      keptDelivered: deliveredToKept.size,
      duplicated: dup.extra,
      sendStates: JSON.stringify(states),
    };
    recordFigure('7-withdrawal', {
      scenario: '7 consent withdrawn while sends are queued',
      load: `${PEOPLE.toLocaleString('en')} welcome sends queued, email worker at ${RATE}/s`,
      fault: `${WITHDRAWING.toLocaleString('en')} people withdraw email_marketing (POST /v1/consent) mid-queue`,
      lost: PEOPLE - WITHDRAWING - deliveredToKept.size,
      duplicated: dup.extra,
      recoveryMs: null,
      counts,
      durationMs: Date.now() - started,
    });
    expect(statuses).toEqual(new Map([[200, WITHDRAWING]]));
    // The scenario tested something: withdrawals came while their sends were still queued.
    expect(stopped).toBeGreaterThan(0);
    expect(stopped + toWithdrawn).toBe(WITHDRAWING);
    expect(violationDetails).toEqual([]);
    expect(deliveredToKept.size).toBe(PEOPLE - WITHDRAWING);
    expect(dup.extra).toBe(0);
    expect(unexpectedExits()).toEqual([]);
  });
});

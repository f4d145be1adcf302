import { type FaultCluster, startFaultCluster } from './cluster';
import { describeIds, effectDuplicates, eventIntegrity, unprocessed, waitOrExplain } from './counts';
import { recordFigure } from './figures';
import { type Role, seededRandom, startKiller } from './killer';
import { chunks, newLedger, postAll, subscriberEvents } from './load';
import { type EngineProcess, unexpectedExits } from './processes';
import { faultRules } from './rules';
import { duplicatesBy, type SmtpSink, startSmtpSink } from './smtp-sink';
import { waitFor } from '../../support/wait';

const PEOPLE = 2_000;
const PER_PERSON = 5;
const EVENTS = PEOPLE * PER_PERSON;
/** Welcomes to the audience and to the new subscribers, and the digest to the audience. */
const EMAILS = 3 * PEOPLE;
/** Kills stop once the work is well under way, or after this long. */
const KILL_WINDOW_MS = 30_000;
/**
 * SMTP's window (docs/reliability.md, scenario 6c): a message the relay accepted while its row did
 * not yet say `sent` is sent again by whoever takes the send over. Between the relay's reply and that
 * update there is one UPDATE; on this loaded machine allow this long before an email-worker kill.
 */
const SMTP_WINDOW_MS = 5_000;
/** Sends an email worker has in flight at most (JOB_CATALOG.email.concurrency). */
const SENDS_IN_FLIGHT = 64;

/**
 * The duplicate emails a kill of the email worker may cause, and those it may not: a duplicate is
 * allowed only as the same message (same Message-ID) whose first copy the relay accepted within
 * SMTP_WINDOW_MS before a kill of the email worker, at most SENDS_IN_FLIGHT a kill.
 */
function smtpWindowDuplicates(messages: ReadonlyArray<{ messageId: string; at: number }>, emailKills: readonly number[]): { inWindow: number; outsideWindow: string[] } {
  const first = new Map<string, number>();
  const extra = new Map<string, number>();
  for (const m of [...messages].sort((a, b) => a.at - b.at)) {
    if (!first.has(m.messageId)) first.set(m.messageId, m.at);
    else extra.set(m.messageId, (extra.get(m.messageId) ?? 0) + 1);
  }
  let inWindow = 0;
  const outsideWindow: string[] = [];
  for (const [id, n] of extra) {
    const at = first.get(id) as number;
    if (n === 1 && emailKills.some((kill) => at <= kill && kill - at <= SMTP_WINDOW_MS)) inWindow++;
    else outsideWindow.push(`${id} (${n + 1} copies, first at ${new Date(at).toISOString().slice(11, 23)})`);
  }
  return { inWindow, outsideWindow };
}

const ALL_ROLES = [
  { name: 'events-1', queues: ['events'] },
  { name: 'events-2', queues: ['events'] },
  { name: 'email', queues: ['email'] },
  { name: 'broadcasts', queues: ['broadcasts', 'journeys'] },
] as const;
export type RoleName = (typeof ALL_ROLES)[number]['name'];

/**
 * Scenario 1 (issue 10): worker processes killed with SIGKILL at random moments while 10,000 events
 * come in (2,000 new people, each granting consent and so entering a welcome campaign) and a
 * broadcast goes to 2,000 others (subscribed before the fault): 0 events lost, 0 duplicate effects
 * (profiles, consent ledger rows, enrolments, sends), 0 duplicate emails. A killed worker's jobs stall
 * and run again once their lock expires (BullMQ: lockDuration 30 s, stall check every 30 s); a
 * supervisor starts each killed process again at once.
 *
 * `victims` are the roles the killer picks from; the others run undisturbed. When the email worker is
 * among them, SMTP's window applies (smtpWindowDuplicates): 0 lost emails, 0 duplicate sends, and a
 * duplicate email only as the same message re-sent after a kill caught it between the relay's reply
 * and its row's update.
 */
export function killWorkersScenario(id: string, title: string, victims: readonly RoleName[]): void {
  describe(title, () => {
    let cluster: FaultCluster;
    let smtp: SmtpSink;
    let api: EngineProcess;
    const seed = Number(process.env.FAULTS_SEED ?? Date.now() % 100_000);
    beforeAll(async () => {
      smtp = await startSmtpSink();
      cluster = await startFaultCluster({ RULES_DIR: faultRules(), SMTP_URL: smtp.url });
      api = await cluster.api();
    }, 120_000);
    afterAll(async () => {
      await cluster?.close();
      await smtp?.close();
    });

    it(victims.includes('email') ? 'loses nothing, sends nothing twice, and re-sends an email only inside SMTP\'s window' : 'loses nothing and duplicates nothing', async () => {
      const started = Date.now();
      const roles: Role[] = await Promise.all(
        ALL_ROLES.map(async ({ name, queues }) => {
          const start = () => cluster.spawnWorker(queues, name);
          return { name, start, current: await cluster.worker(queues, name) };
        }),
      );
      const url = api.url as string;
      // Before the fault: the broadcast's audience, 2,000 subscribers (each also gets the welcome).
      const audience = subscriberEvents('a', PEOPLE, 2, 'digest');
      const ledger = newLedger();
      await postAll(url, cluster.writeKey, chunks(audience, 50), 4, ledger);
      await waitOrExplain(
        cluster,
        async () => (await cluster.number("select count(*) from app.segment_state where segment_id = 'fault_audience' and member")) === PEOPLE,
        "the broadcast's audience in its segment",
        60_000,
      );

      // The fault: 10,000 events of 2,000 new subscribers and the broadcast's tick (as its job
      // scheduler adds it), while workers are killed at random.
      const killer = startKiller(
        roles.filter((r) => victims.includes(r.name as RoleName)),
        { minMs: 500, maxMs: 2_500, random: seededRandom(seed) },
      );
      let killerStopped = false;
      const events = subscriberEvents('k', PEOPLE, PER_PERSON);
      const sent = (campaign: string) => smtp.messages.filter((m) => m.campaign === campaign).length;
      const state = async () => ({
        seed,
        kills: killer.kills.map((k) => `${k.role}@${new Date(k.at).toISOString().slice(11, 23)}`).join(' '),
        welcomes: sent('fault_welcome'),
        digests: sent('fault_digest'),
        unprocessed: describeIds(await unprocessed(cluster, ledger.accepted)),
      });
      try {
        const faultStarted = Date.now();
        await cluster.queue('broadcasts').add('tick', { campaignId: 'fault_digest' }, { jobId: 'fault-digest-tick', attempts: 10, backoff: { type: 'exponential', delay: 5_000 } });
        // At a steady 1,000 events/s (10 s), so workers die while the work goes on, not after it.
        await postAll(url, cluster.writeKey, chunks(events, 50), 4, ledger, { batchesPerSecond: 20 });
        expect(ledger.accepted.size).toBe(audience.length + EVENTS);
        // Kills go on until the work is well under way (half the digests out), KILL_WINDOW_MS at most.
        await waitFor(() => Date.now() - faultStarted > KILL_WINDOW_MS || sent('fault_digest') >= PEOPLE / 2, {
          timeoutMs: KILL_WINDOW_MS + 5_000,
          what: 'the kill window',
        });
        await killer.stop();
        killerStopped = true;
        const lastKill = killer.lastKillAt() ?? Date.now();

        await waitOrExplain(
          cluster,
          async () =>
            (await cluster.number("select count(*) from app.scheduled_sends where state = 'sent'")) === EMAILS &&
            smtp.messages.length >= EMAILS &&
            (await cluster.number('select count(*) from app.event_receipts')) === ledger.accepted.size,
          'every event stored and every email sent',
          // A stalled job runs again within lockDuration + stalledInterval (60 s), then does its work;
          // on a 2-core machine shared with other work that took up to 85 s.
          180_000,
          state,
        );
        const recoveryMs = Date.now() - lastKill;

        const integrity = await eventIntegrity(cluster, ledger.accepted);
        const profiles = await cluster.number('select count(*) from app.profiles');
        const { ledgerDuplicates, enrolDuplicates, sendDuplicates } = await effectDuplicates(cluster);
        const byMessageId = duplicatesBy(smtp.messages, (m) => m.messageId);
        const byPerson = duplicatesBy(smtp.messages, (m) => `${m.campaign} ${m.to.join(',')}`);
        const emailKills = killer.kills.filter((k) => k.role === 'email').map((k) => k.at);
        const window = smtpWindowDuplicates(smtp.messages, emailKills);
        const failed = Object.fromEntries(await Promise.all(['events', 'email', 'broadcasts'].map(async (q) => [q, (await cluster.jobCounts(q)).failed] as const)));
        const counts = {
          seed,
          kills: killer.kills.length,
          killsByRole: killer.kills.map((k) => k.role).join(' '),
          accepted: ledger.accepted.size,
          stored: integrity.stored,
          eventsLost: integrity.lost.length,
          eventsDuplicated: integrity.duplicated,
          profiles,
          ledgerDuplicates,
          enrolDuplicates,
          sendDuplicates,
          emailsDue: EMAILS,
          emailsSent: smtp.messages.length,
          emailsDistinct: byMessageId.distinct,
          emailsDuplicated: byMessageId.extra,
          emailsDuplicatedPerPerson: byPerson.extra,
          emailsDuplicatedInSmtpWindow: window.inWindow,
          emailKills: emailKills.length,
          failedJobs: JSON.stringify(failed),
        };
        recordFigure(id, {
          scenario: `1 kill -9 of ${victims.join(', ')} workers`,
          load: '10,000 events (2,000 new subscribers → 2,000 welcome emails) and a broadcast to 2,000 others',
          fault: `${killer.kills.length} × SIGKILL of a random one of ${victims.join(', ')} every 0.5–2.5 s, each restarted at once`,
          lost: integrity.lost.length + (EMAILS - byMessageId.distinct),
          duplicated: integrity.duplicated + byMessageId.extra + ledgerDuplicates + enrolDuplicates + sendDuplicates,
          recoveryMs,
          counts,
          durationMs: Date.now() - started,
        });
        expect(counts).toMatchObject({
          eventsLost: 0,
          eventsDuplicated: 0,
          profiles: 2 * PEOPLE,
          ledgerDuplicates: 0,
          enrolDuplicates: 0,
          sendDuplicates: 0,
          emailsDistinct: EMAILS,
          // Every duplicate email is the same message re-sent (same Message-ID), never a second send.
          emailsDuplicatedPerPerson: byMessageId.extra,
          emailsDuplicated: victims.includes('email') ? window.inWindow : 0,
        });
        expect(window.outsideWindow).toEqual([]);
        expect(window.inWindow).toBeLessThanOrEqual(SENDS_IN_FLIGHT * emailKills.length);
        expect(failed).toEqual({ events: 0, email: 0, broadcasts: 0 });
        expect(unexpectedExits()).toEqual([]);
      } finally {
        if (!killerStopped) await killer.stop();
      }
    });
  });
}

import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { snapshot } from './harness/counts';
import { chunks, newLedger, postAll, subscriberEvents } from './harness/load';
import type { EngineProcess } from './harness/processes';
import { faultRules } from './harness/rules';
import { type SmtpSink, startSmtpSink } from './harness/smtp-sink';
import { waitFor } from '../support/wait';

const PEOPLE = 20;

/**
 * Passes since the stale-claim sweep (docs/reliability.md "Defects found" 1); it failed before it.
 *
 * An email worker killed (SIGKILL, OOM, a lost host) while its sends are claimed but not yet
 * accepted by the relay leaves their rows in `sending` for ever, and the person never gets the
 * email. engine/email/send-claim.ts claimLocked() answers `in_flight` for a `sending` row whose
 * claim is younger than STALE_CLAIM_MS (2 min); the killed worker's jobs stall and BullMQ runs them
 * again once their lock expires (lockDuration 30 s + stalledInterval 30 s, so well within 2 min):
 * the re-run gets `in_flight`, workers/email.ts `send` returns it as a normal outcome and the job
 * completes. No job is left, the sweep (overdueSends in engine/email/send-step.ts) looks at
 * `scheduled` rows only, and nothing ever looks at a stale `sending` row again. docs/email.md
 * ("after two minutes another attempt takes it over") describes a take-over that nothing triggers.
 *
 * Run: npx jest -c jest.faults.config.js --testMatch='<rootDir>/test/faults/pending/*.fault.ts' -t stranded
 */
describe('pending: sends stranded by a killed email worker', () => {
  let cluster: FaultCluster;
  let smtp: SmtpSink;
  let api: EngineProcess;
  beforeAll(async () => {
    smtp = await startSmtpSink();
    cluster = await startFaultCluster({ RULES_DIR: faultRules(), SMTP_URL: smtp.url });
    api = await cluster.api();
    await cluster.worker(['events'], 'events');
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
    await smtp?.close();
  });

  it('sends every claimed email after the worker that claimed it was killed', async () => {
    // The relay holds every message's reply, so the worker is killed with its sends claimed and
    // mid-delivery, none of them accepted.
    smtp.hold(true);
    const email = await cluster.worker(['email'], 'email-1');
    await postAll(api.url as string, cluster.writeKey, chunks(subscriberEvents('s', PEOPLE, 1), 20), 1, newLedger());
    await waitFor(async () => smtp.held() > 0 && (await cluster.number("select count(*) from app.scheduled_sends where state = 'sending'")) === PEOPLE, {
      timeoutMs: 60_000,
      what: 'every send claimed and the first ones in DATA at the relay',
    });
    await email.kill9();
    const killedAt = Date.now();
    // The relay sees the killed worker's connections close; the messages it held are not delivered.
    await waitFor(() => smtp.held() === 0, { timeoutMs: 10_000, what: "the relay to see the killed worker's connections close" });
    smtp.hold(false);
    expect(smtp.messages).toHaveLength(0);
    await cluster.worker(['email'], 'email-2');

    // The killed worker's jobs run again (stalled), and finish: nothing is left queued for them.
    await waitFor(async () => (await cluster.pending('email')) === 0, { timeoutMs: 120_000, what: 'the stalled send jobs to run again' });
    const afterRerun = await snapshot(cluster);
    // Past the stale-claim age (2 min) and a sweep (1 min), with margin: every email should be out.
    await waitFor(async () => smtp.messages.length >= PEOPLE, { timeoutMs: 240_000, what: `${PEOPLE} emails delivered` }).catch(async (err: Error) => {
      throw new Error(
        `${err.message} (${Math.round((Date.now() - killedAt) / 1000)} s after the kill)\n` +
          `after the stalled jobs ran again: ${JSON.stringify(afterRerun)}\nnow: ${JSON.stringify(await snapshot(cluster))}\ndelivered: ${smtp.messages.length}`,
      );
    });
    expect(await cluster.number("select count(*) from app.scheduled_sends where state = 'sent'")).toBe(PEOPLE);
  }, 480_000);
});

import { type FaultCluster, startFaultCluster } from './harness/cluster';
import { recordFigure } from './harness/figures';
import { chunks, newLedger, plainEvents, postAll } from './harness/load';
import { type EngineProcess, unexpectedExits } from './harness/processes';
import { faultRules } from './harness/rules';
import { waitFor } from '../support/wait';

const EVENTS = 10_000;
const PEOPLE = 1_000;

/**
 * Scenario 2 (issue 10): the same 10,000 events sent three times, the replays racing the first pass
 * through the API and two events workers: each is stored once (invariant 6: idempotency by messageId).
 */
describe('fault 2: the same 10,000 events replayed three times', () => {
  let cluster: FaultCluster;
  let api: EngineProcess;
  beforeAll(async () => {
    cluster = await startFaultCluster({ RULES_DIR: faultRules({ linkByDefault: true }) });
    [api] = await Promise.all([cluster.api(), cluster.worker(['events'], 'events-1'), cluster.worker(['events'], 'events-2')]);
  }, 120_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('stores each event once, whatever order and grouping the copies come in', async () => {
    const started = Date.now();
    const events = plainEvents('replay', EVENTS, PEOPLE);
    const url = api.url as string;
    // Three passes over the same events, grouped differently and sent at once: copies of one event
    // meet in one batch, in two batches of two workers at the same moment, and after it was stored.
    const shuffled = [...events].sort(() => Math.random() - 0.5);
    const passes = [chunks(events, 100), chunks(shuffled, 250), chunks([...events].reverse(), 40)];
    const ledgers = passes.map(() => newLedger());
    await Promise.all(passes.map((batches, i) => postAll(url, cluster.writeKey, batches, 4, ledgers[i])));
    const acceptedCopies = ledgers.reduce((n, l) => n + l.accepted.size, 0);
    expect(acceptedCopies).toBe(3 * EVENTS);
    const sentAt = Date.now();

    await waitFor(
      async () => {
        return (await cluster.pending('events')) === 0 && (await cluster.number('select count(*) from app.event_receipts')) === EVENTS;
      },
      { timeoutMs: 120_000, what: 'the events queue to drain' },
    );
    const drainedMs = Date.now() - sentAt;
    const stored = await cluster.number('select count(*) from app.events where source_id = $1', [cluster.sourceId]);
    const distinct = await cluster.number('select count(distinct message_id) from app.events where source_id = $1', [cluster.sourceId]);
    const expected = new Set(events.map((e) => e.messageId));
    const storedIds = new Set((await cluster.rows<{ message_id: string }>('select message_id from app.events where source_id = $1', [cluster.sourceId])).map((r) => r.message_id));
    const lost = [...expected].filter((id) => !storedIds.has(id)).length;
    const profiles = await cluster.number('select count(*) from app.profiles');
    const failed = (await cluster.jobCounts('events')).failed;
    const rejections = await cluster.number('select count(*) from app.event_rejections');

    recordFigure('2-replay', {
      scenario: '2 replay ×3',
      load: '10,000 events (1,000 people) sent 3 times at once, 2 events workers',
      fault: 'every event delivered 3 times, copies racing',
      lost,
      duplicated: stored - distinct,
      recoveryMs: null,
      counts: { accepted: acceptedCopies, distinctAccepted: expected.size, stored, distinct, profiles, failedJobs: failed, rejections, drainAfterLastPostMs: drainedMs },
      durationMs: Date.now() - started,
    });
    expect({ stored, distinct, lost, profiles, failed, rejections }).toEqual({ stored: EVENTS, distinct: EVENTS, lost: 0, profiles: PEOPLE, failed: 0, rejections: 0 });
    expect(unexpectedExits()).toEqual([]);
  });
});

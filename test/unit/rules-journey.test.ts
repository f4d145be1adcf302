import { compileRuleSet } from '../../engine/rules/compile';
import type { ProfileSnapshot } from '../../engine/rules/conditions';
import { advance, type JourneyContext, type JourneyInput, type JourneyResult, type JourneyState, quietHoursEnd, startJourney } from '../../engine/rules/journey';
import { buildRuleSet, shippedPurposes, snapshotOf, trackEvent } from '../support/rule-sets';

const catalog = shippedPurposes();
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function campaignOf(raw: Record<string, unknown>) {
  const compiled = compileRuleSet(buildRuleSet({ campaigns: [{ id: 'c', name: 'C', purposes: ['email_marketing'], trigger: { event: { name: 'Go' } }, ...raw }] }));
  return compiled.campaigns.get('c') as NonNullable<ReturnType<typeof compiled.campaigns.get>>;
}

function context(sendsInWindow: JourneyContext['sendsInWindow'] = () => 0): JourneyContext {
  return { catalog, sendsInWindow };
}

const start = (campaign: ReturnType<typeof campaignOf>, at: string, snapshot: ProfileSnapshot = snapshotOf(), ctx = context()) =>
  advance(campaign, startJourney('c', 1, new Date(at)), { kind: 'start', at: new Date(at) }, snapshot, ctx);

const next = (campaign: ReturnType<typeof campaignOf>, result: JourneyResult, input: JourneyInput, snapshot: ProfileSnapshot = snapshotOf(), ctx = context()) =>
  advance(campaign, result.state as JourneyState, input, snapshot, ctx);

const timer = (at: Date | string): JourneyInput => ({ kind: 'timer', at: new Date(at) });

describe('quietHoursEnd', () => {
  const night = { from: '21:00', to: '08:00' };

  it.each([
    // Warsaw in winter is UTC+1.
    ['2026-01-15T21:30:00Z', night, 'Europe/Warsaw', '2026-01-16T07:00:00.000Z'], // 22:30 local: to tomorrow 08:00
    ['2026-01-15T05:00:00Z', night, 'Europe/Warsaw', '2026-01-15T07:00:00.000Z'], // 06:00 local: to today 08:00
    ['2026-01-15T20:00:00Z', night, 'Europe/Warsaw', '2026-01-16T07:00:00.000Z'], // 21:00 local: inside [from
    ['2026-01-15T19:59:00Z', night, 'Europe/Warsaw', null], // 20:59 local
    ['2026-01-15T07:00:00Z', night, 'Europe/Warsaw', null], // 08:00 local: to) is outside
    // The same instant is daytime in New York (UTC-5): the person's zone decides.
    ['2026-01-15T21:30:00Z', night, 'America/New_York', null],
    ['2026-01-16T03:00:00Z', night, 'America/New_York', '2026-01-16T13:00:00.000Z'], // 22:00 local
    // A window within a day.
    ['2026-01-15T17:30:00Z', { from: '12:00', to: '14:00' }, 'America/New_York', '2026-01-15T19:00:00.000Z'],
    ['2026-01-15T19:00:00Z', { from: '12:00', to: '14:00' }, 'America/New_York', null],
    // Spring forward in Warsaw (2026-03-29 02:00 CET → 03:00 CEST): the night is an hour shorter.
    ['2026-03-28T21:00:00Z', night, 'Europe/Warsaw', '2026-03-29T06:00:00.000Z'],
    // Fall back (2026-10-25 03:00 CEST → 02:00 CET): an hour longer.
    ['2026-10-24T20:00:00Z', night, 'Europe/Warsaw', '2026-10-25T07:00:00.000Z'],
    // A window ending at a time that does not exist that day ends when the clocks jump.
    ['2026-03-28T23:30:00Z', { from: '00:00', to: '02:30' }, 'Europe/Warsaw', '2026-03-29T01:00:00.000Z'],
    // A time that happens twice ends the window at its first occurrence.
    ['2026-10-24T22:30:00Z', { from: '00:00', to: '02:30' }, 'Europe/Warsaw', '2026-10-25T00:30:00.000Z'],
    ['2026-01-15T12:00:00Z', { from: '09:00', to: '09:00' }, 'UTC', null],
  ])('a send at %s with %j in %s → %s', (at, window, zone, expected) => {
    expect(quietHoursEnd(new Date(at), window, zone)?.toISOString() ?? null).toBe(expected);
  });
});

describe('advance', () => {
  it('sends, waits, and completes, naming steps by id or path', () => {
    const campaign = campaignOf({ steps: [{ id: 'hello', send: { template: 'welcome' } }, { wait: '2d' }, { send: { template: 'tips' } }] });
    const first = start(campaign, '2026-01-15T10:00:00Z');
    expect(first.actions).toEqual([
      { kind: 'send', template: 'welcome', stepId: 'hello', at: new Date('2026-01-15T10:00:00Z') },
      { kind: 'wake', at: new Date('2026-01-17T10:00:00Z') },
    ]);
    expect(first.state).toMatchObject({ campaignId: 'c', entry: 1, cursor: [1], waiting: { kind: 'wait', until: new Date('2026-01-17T10:00:00Z') } });
    // An early timer changes nothing.
    expect(next(campaign, first, timer('2026-01-16T10:00:00Z'))).toEqual({ state: first.state, actions: [] });
    expect(next(campaign, first, timer('2026-01-17T10:00:00Z'))).toEqual({
      state: null,
      actions: [
        { kind: 'send', template: 'tips', stepId: 'steps.2', at: new Date('2026-01-17T10:00:00Z') },
        { kind: 'finished', how: 'completed', reason: 'all steps done' },
      ],
    });
  });

  describe('quiet hours', () => {
    const campaign = campaignOf({
      steps: [{ send: { template: 'welcome' } }, { wait: '1d' }, { send: { template: 'tips' } }],
      limits: { quiet_hours: { from: '21:00', to: '08:00', timezone: 'Europe/Warsaw' } },
    });

    it('defers a send to the end of the window in the default zone, and the journey goes on from the send', () => {
      // 23:30 in Warsaw.
      const first = start(campaign, '2026-01-15T22:30:00Z');
      const reason = 'quiet hours 21:00–08:00 Europe/Warsaw: deferred to 2026-01-16T07:00:00.000Z';
      expect(first.actions).toEqual([
        { kind: 'send', template: 'welcome', stepId: 'steps.0', at: new Date('2026-01-16T07:00:00Z'), deferredFrom: new Date('2026-01-15T22:30:00Z'), reason },
        { kind: 'wake', at: new Date('2026-01-16T07:00:00Z') },
      ]);
      const waited = next(campaign, first, timer('2026-01-16T07:00:00Z'));
      expect(waited.actions).toEqual([{ kind: 'wake', at: new Date('2026-01-17T07:00:00Z') }]);
      expect(next(campaign, waited, timer('2026-01-17T07:00:00Z')).actions[0]).toEqual({
        kind: 'send',
        template: 'tips',
        stepId: 'steps.2',
        at: new Date('2026-01-17T07:00:00Z'),
      });
    });

    it("uses the person's own time zone when they have one", () => {
      // 23:30 in Warsaw is 17:30 in New York: not quiet there.
      const ny = snapshotOf({ timezone: 'America/New_York' });
      expect(start(campaign, '2026-01-15T22:30:00Z', ny).actions[0]).toEqual({
        kind: 'send',
        template: 'welcome',
        stepId: 'steps.0',
        at: new Date('2026-01-15T22:30:00Z'),
      });
      // 22:00 in New York, after midnight UTC: deferred to 08:00 New York time.
      expect(start(campaign, '2026-01-16T03:00:00Z', ny).actions[0]).toMatchObject({
        at: new Date('2026-01-16T13:00:00Z'),
        deferredFrom: new Date('2026-01-16T03:00:00Z'),
        reason: 'quiet hours 21:00–08:00 America/New_York: deferred to 2026-01-16T13:00:00.000Z',
      });
      // An unknown zone falls back to the campaign's.
      expect(start(campaign, '2026-01-15T22:30:00Z', snapshotOf({ timezone: 'Mars/Olympus' })).actions[0]).toMatchObject({ at: new Date('2026-01-16T07:00:00Z') });
    });

    it('lets the operator default apply when the campaign sets none', () => {
      const plain = campaignOf({ steps: [{ send: { template: 'welcome' } }] });
      const ctx: JourneyContext = { ...context(), quietHours: { from: '22:00', to: '07:00', timezone: 'UTC' } };
      expect(start(plain, '2026-01-15T23:00:00Z', snapshotOf(), ctx).actions[0]).toMatchObject({ at: new Date('2026-01-16T07:00:00Z') });
    });
  });

  describe('frequency cap', () => {
    const campaign = campaignOf({
      steps: [{ id: 'a', send: { template: 'a' } }, { id: 'b', send: { template: 'b' } }, { id: 'c', send: { template: 'c' } }],
      limits: { frequency_cap: { max: 2, per: '1d' } },
    });

    it('skips a send over the cap, counting earlier sends and those of this run', () => {
      const asked: Date[] = [];
      const result = start(
        campaign,
        '2026-01-15T10:00:00Z',
        snapshotOf(),
        context((_channel, since) => {
          asked.push(since);
          return 1;
        }),
      );
      expect(asked[0]).toEqual(new Date('2026-01-14T10:00:00Z'));
      expect(result.actions).toEqual([
        { kind: 'send', template: 'a', stepId: 'a', at: new Date('2026-01-15T10:00:00Z') },
        { kind: 'skip', stepId: 'b', reason: 'frequency cap: 2 email sends in the 1d before 2026-01-15T10:00:00.000Z, at most 2' },
        { kind: 'skip', stepId: 'c', reason: 'frequency cap: 2 email sends in the 1d before 2026-01-15T10:00:00.000Z, at most 2' },
        { kind: 'finished', how: 'completed', reason: 'all steps done' },
      ]);
    });
  });

  describe('wait_until', () => {
    const campaign = (onTimeout: 'continue' | 'exit') =>
      campaignOf({
        steps: [
          { wait_until: { event: { name: 'Checkout Started', where: { step: 1 } }, timeout: '1d', on_timeout: onTimeout } },
          { send: { template: 'next' } },
        ],
      });

    it('goes on at once when the event comes', () => {
      const c = campaign('exit');
      const waiting = start(c, '2026-01-15T10:00:00Z');
      expect(waiting.actions).toEqual([{ kind: 'wake', at: new Date('2026-01-16T10:00:00Z') }]);
      const other = trackEvent('Checkout Started', '2026-01-15T12:00:00Z', { step: 2 });
      expect(next(c, waiting, { kind: 'event', at: other.occurredAt, event: other }).actions).toEqual([]);
      const event = trackEvent('Checkout Started', '2026-01-15T12:00:00Z', { step: 1 });
      expect(next(c, waiting, { kind: 'event', at: event.occurredAt, event }).actions).toEqual([
        { kind: 'send', template: 'next', stepId: 'steps.1', at: new Date('2026-01-15T12:00:00Z') },
        { kind: 'finished', how: 'completed', reason: 'all steps done' },
      ]);
    });

    it('on timeout, exits or continues as the step says', () => {
      const exit = campaign('exit');
      expect(next(exit, start(exit, '2026-01-15T10:00:00Z'), timer('2026-01-16T10:00:00Z'))).toEqual({
        state: null,
        actions: [{ kind: 'finished', how: 'exited', reason: 'no Checkout Started within 1d' }],
      });
      const go = campaign('continue');
      expect(next(go, start(go, '2026-01-15T10:00:00Z'), timer('2026-01-16T10:00:00Z')).actions[0]).toMatchObject({ kind: 'send', template: 'next' });
    });

    it('counts a matching event stored during the wait that the journey had not seen, not one at the timeout', () => {
      const exit = campaign('exit');
      const waiting = start(exit, '2026-01-15T10:00:00Z');
      const seen = snapshotOf({ events: [trackEvent('Checkout Started', '2026-01-15T20:00:00Z', { step: 1 })] });
      expect(next(exit, waiting, timer('2026-01-16T10:00:00Z'), seen).actions[0]).toMatchObject({ kind: 'send' });
      const late = trackEvent('Checkout Started', '2026-01-16T10:00:00Z', { step: 1 });
      expect(next(exit, waiting, { kind: 'event', at: late.occurredAt, event: late }).actions).toEqual([]);
    });
  });

  describe('branch, traits, segments, end', () => {
    const campaign = campaignOf({
      steps: [
        { set_trait: { name: 'plan', value: 'trial' } },
        {
          branch: {
            if: { trait: 'plan', equals: 'trial' },
            then: [{ add_to_segment: 'trialists' }, { id: 'stop', end: true }],
            else: [{ send: { template: 'else' } }],
          },
        },
        { send: { template: 'never' } },
      ],
    });

    it('branches on what earlier steps set, and an end step ends the journey', () => {
      expect(start(campaign, '2026-01-15T10:00:00Z')).toEqual({
        state: null,
        actions: [
          { kind: 'set_trait', stepId: 'steps.0', name: 'plan', value: 'trial' },
          { kind: 'add_to_segment', stepId: 'steps.1.then.0', segmentId: 'trialists' },
          { kind: 'finished', how: 'ended', reason: 'end step stop' },
        ],
      });
    });

    it('takes else, then climbs out of the branch to the next step', () => {
      const other = campaignOf({
        steps: [
          { branch: { if: { consent: 'profiling' }, then: [{ remove_from_segment: 'cold' }], else: [{ send: { template: 'else' } }] } },
          { branch: { if: { in_segment: 'cold' }, then: [{ send: { template: 'cold' } }] } },
          { send: { template: 'after' } },
        ],
      });
      const actions = start(other, '2026-01-15T10:00:00Z', snapshotOf({ segments: new Set(['cold']) })).actions;
      expect(actions).toEqual([
        { kind: 'remove_from_segment', stepId: 'steps.0.then.0', segmentId: 'cold' },
        // The removal is seen by the next branch: it has no else, so straight to the next step.
        { kind: 'send', template: 'after', stepId: 'steps.2', at: new Date('2026-01-15T10:00:00Z') },
        { kind: 'finished', how: 'completed', reason: 'all steps done' },
      ]);
    });

    it('resumes inside a branch after a wait', () => {
      const nested = campaignOf({
        steps: [{ branch: { if: { trait: 'x', exists: false }, then: [{ wait: '1h' }, { send: { template: 'inner' } }] } }, { send: { template: 'outer' } }],
      });
      const waiting = start(nested, '2026-01-15T10:00:00Z');
      expect(waiting.state?.cursor).toEqual([0, 'then', 0]);
      expect(next(nested, waiting, timer(new Date(Date.parse('2026-01-15T10:00:00Z') + HOUR))).actions.map((a) => (a.kind === 'send' ? a.template : a.kind))).toEqual([
        'inner',
        'outer',
        'finished',
      ]);
    });
  });

  it('ends a journey whose step no longer exists', () => {
    const campaign = campaignOf({ steps: [{ send: { template: 'a' } }] });
    const state: JourneyState = { campaignId: 'c', entry: 1, cursor: [5], startedAt: new Date(0) };
    expect(advance(campaign, state, timer(new Date(DAY)), snapshotOf(), context()).actions[0]).toMatchObject({ kind: 'finished', how: 'ended' });
  });
});

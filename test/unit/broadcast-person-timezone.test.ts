import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compileRuleSet } from '../../engine/rules/compile';
import {
  advance,
  broadcastStart,
  EARLIEST_TIME_ZONE,
  type JourneyResult,
  type JourneyState,
  sameWallTimeIn,
  scheduleZone,
  startJourney,
} from '../../engine/rules/journey';
import { loadRuleSet } from '../../engine/rules/load';
import { parseSimEvents, simulate, type Timeline } from '../../engine/rules/simulate';
import { CampaignFile } from '../../schemas/rules/campaign-file';
import { buildRuleSet, jsonl, shippedPurposes, snapshotOf } from '../support/rule-sets';

/** Broadcasts in each person's time zone (`schedule.person_timezone`): the pure parts and the simulator. */

/** The instant at which it is `wall` (YYYY-MM-DDTHH:MM) in Etc/GMT-14 (UTC+14). */
const inEarliest = (wall: string) => new Date(Date.parse(`${wall}:00Z`) - 14 * 3_600_000);

describe('sameWallTimeIn', () => {
  it.each([
    // Monday 2026-12-07 09:00 in UTC+14 is Sunday 19:00 UTC.
    ['2026-12-07T09:00', 'Asia/Tokyo', '2026-12-07T00:00:00.000Z'], // UTC+9
    ['2026-12-07T09:00', 'America/New_York', '2026-12-07T14:00:00.000Z'], // EST, UTC-5
    ['2026-12-07T09:00', 'Europe/Warsaw', '2026-12-07T08:00:00.000Z'], // CET, UTC+1
    ['2026-12-07T09:00', 'Asia/Kolkata', '2026-12-07T03:30:00.000Z'], // UTC+5:30
    ['2026-12-07T09:00', 'Asia/Kathmandu', '2026-12-07T03:15:00.000Z'], // UTC+5:45
    ['2026-12-07T09:00', 'Australia/Lord_Howe', '2026-12-06T22:00:00.000Z'], // summer, UTC+11
    ['2026-12-07T09:00', 'Etc/GMT+12', '2026-12-07T21:00:00.000Z'], // the latest zone: 26 h after the tick
    ['2026-12-07T09:00', 'Pacific/Kiritimati', '2026-12-06T19:00:00.000Z'], // UTC+14 itself: the tick
    ['2026-12-07T09:00', 'UTC', '2026-12-07T09:00:00.000Z'],
    // New York springs forward on 2026-03-08 (02:00 EST → 03:00 EDT): 09:00 is EDT, UTC-4.
    ['2026-03-08T09:00', 'America/New_York', '2026-03-08T13:00:00.000Z'],
    ['2026-03-07T09:00', 'America/New_York', '2026-03-07T14:00:00.000Z'],
    // 02:30 does not exist that day: the instant the clocks jump (03:00 EDT).
    ['2026-03-08T02:30', 'America/New_York', '2026-03-08T07:00:00.000Z'],
    // Falls back on 2026-11-01 (02:00 EDT → 01:00 EST): 01:30 happens twice, the first one counts.
    ['2026-11-01T01:30', 'America/New_York', '2026-11-01T05:30:00.000Z'],
    // Warsaw springs forward on 2026-03-29: 09:00 is CEST, UTC+2.
    ['2026-03-29T09:00', 'Europe/Warsaw', '2026-03-29T07:00:00.000Z'],
  ])('%s in Etc/GMT-14 comes in %s at %s', (wall, zone, expected) => {
    expect(sameWallTimeIn(inEarliest(wall), EARLIEST_TIME_ZONE, zone).toISOString()).toBe(expected);
  });

  it('is never earlier than the instant given: a wall time already past in the target zone is now', () => {
    // 00:00 UTC on 2026-12-07 is 09:00 in Tokyo: midnight in Tokyo has passed.
    const at = new Date('2026-12-07T00:00:00Z');
    expect(sameWallTimeIn(at, 'UTC', 'Asia/Tokyo')).toEqual(at);
    // From the earliest zone, every zone on Earth is at or after the tick.
    for (const zone of ['Pacific/Kiritimati', 'Pacific/Apia', 'Pacific/Auckland', 'Asia/Kathmandu', 'America/St_Johns', 'Pacific/Pago_Pago', 'Etc/GMT+12']) {
      const tick = inEarliest('2026-06-15T09:00');
      const start = sameWallTimeIn(tick, EARLIEST_TIME_ZONE, zone);
      expect(start.getTime()).toBeGreaterThanOrEqual(tick.getTime());
      expect(start.getTime() - tick.getTime()).toBeLessThanOrEqual(26 * 3_600_000);
      expect(new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', day: '2-digit' }).format(start)).toBe('15, 09:00');
    }
  });
});

describe('broadcastStart', () => {
  const schedule = CampaignFile.shape.trigger.parse({ schedule: { cron: '0 9 * * 1', timezone: 'Europe/Warsaw', person_timezone: true }, segment: 's' });
  const local = 'schedule' in schedule ? schedule.schedule : undefined;
  const tick = inEarliest('2026-12-07T09:00');

  it('defaults person_timezone to false: such a broadcast ticks in its own zone and starts at the tick', () => {
    const parsed = CampaignFile.shape.trigger.parse({ schedule: { cron: '0 9 * * 1', timezone: 'Europe/Warsaw' }, segment: 's' });
    const plain = 'schedule' in parsed ? parsed.schedule : undefined;
    expect(plain?.person_timezone).toBe(false);
    expect(scheduleZone(plain as NonNullable<typeof plain>)).toBe('Europe/Warsaw');
    expect(broadcastStart(plain as NonNullable<typeof plain>, tick, 'Asia/Tokyo', tick)).toBeUndefined();
  });

  it("starts each member at the tick's wall time in their zone, else in the campaign's, and says so", () => {
    const s = local as NonNullable<typeof local>;
    expect(scheduleZone(s)).toBe('Etc/GMT-14');
    expect(broadcastStart(s, tick, 'Asia/Tokyo', tick)).toEqual({
      at: new Date('2026-12-07T00:00:00Z'),
      zone: 'Asia/Tokyo',
      reason: 'at 09:00 Asia/Tokyo (2026-12-07T00:00:00.000Z)',
    });
    expect(broadcastStart(s, tick, 'America/New_York', tick)?.at).toEqual(new Date('2026-12-07T14:00:00Z'));
    for (const none of [undefined, 'Mars/Olympus']) {
      expect(broadcastStart(s, tick, none, tick)).toEqual({
        at: new Date('2026-12-07T08:00:00Z'),
        zone: 'Europe/Warsaw',
        reason: "at 09:00 Europe/Warsaw (2026-12-07T08:00:00.000Z), the campaign's zone: no valid timezone trait",
      });
    }
  });

  it('starts no earlier than the tick actually runs: a late tick sends late, never in the past', () => {
    const s = local as NonNullable<typeof local>;
    const late = new Date('2026-12-07T02:00:00Z');
    expect(broadcastStart(s, tick, 'Asia/Tokyo', late)).toMatchObject({ at: late, reason: 'at 11:00 Asia/Tokyo (2026-12-07T02:00:00.000Z)' });
    expect(broadcastStart(s, tick, 'America/New_York', late)?.at).toEqual(new Date('2026-12-07T14:00:00Z'));
  });
});

describe('a journey started early (a broadcast in each person’s zone)', () => {
  const catalog = shippedPurposes();
  const compiled = compileRuleSet(
    buildRuleSet({
      campaigns: [
        {
          id: 'c',
          name: 'C',
          purposes: ['email_marketing'],
          trigger: { schedule: { cron: '0 9 * * 1', person_timezone: true }, segment: 's' },
          steps: [{ id: 'issue', send: { template: 'digest' } }, { wait: '1d' }, { id: 'follow', send: { template: 'follow_up' } }],
        },
      ],
    }),
  );
  const campaign = compiled.campaigns.get('c') as NonNullable<ReturnType<typeof compiled.campaigns.get>>;
  const context = { catalog, sendsInWindow: () => 0 };
  const tick = new Date('2026-12-06T19:00:00Z');
  const at = new Date('2026-12-07T14:00:00Z');

  it('schedules the send at its start and waits for it, so the journey is still running (and can exit) until then', () => {
    const first = advance(campaign, startJourney('c', 1, at), { kind: 'start', at, now: tick }, snapshotOf(), context);
    expect(first.actions).toEqual([
      { kind: 'send', template: 'digest', stepId: 'issue', at },
      { kind: 'wake', at },
    ]);
    expect(first.state).toMatchObject({ cursor: [0], waiting: { kind: 'wait', until: at }, startedAt: at });
    // Woken at its start, the wait that follows counts from it.
    const second = advance(campaign, first.state as JourneyState, { kind: 'timer', at }, snapshotOf(), context);
    expect(second.actions).toEqual([{ kind: 'wake', at: new Date('2026-12-08T14:00:00Z') }]);
    const done: JourneyResult = advance(campaign, second.state as JourneyState, { kind: 'timer', at: new Date('2026-12-08T14:00:00Z') }, snapshotOf(), context);
    expect(done.actions.map((a) => a.kind)).toEqual(['send', 'finished']);
  });

  it('does not wait when it starts at once (the member is in the earliest zone)', () => {
    const first = advance(campaign, startJourney('c', 1, tick), { kind: 'start', at: tick, now: tick }, snapshotOf(), context);
    expect(first.actions).toEqual([
      { kind: 'send', template: 'digest', stepId: 'issue', at: tick },
      { kind: 'wake', at: new Date('2026-12-07T19:00:00Z') },
    ]);
  });
});

describe('rules check', () => {
  it('accepts a broadcast in each person’s zone, its cron checked as it will tick', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-rules-'));
    fs.cpSync(path.resolve(__dirname, '../../rules'), dir, { recursive: true });
    const write = (cron: string) =>
      fs.writeFileSync(
        path.join(dir, 'campaigns', 'local_digest.yaml'),
        `id: local_digest\nname: Local digest\npurposes: [email_marketing]\ntrigger:\n  schedule: {cron: "${cron}", timezone: Europe/Warsaw, person_timezone: true}\n  segment: newsletter_subscribers\nsteps:\n  - send: {template: weekly_digest}\n`,
      );
    try {
      write('0 9 * * 1');
      const ok = loadRuleSet(dir);
      expect(ok.ok ? [] : ok.problems.map((p) => p.message)).toEqual([]);
      write('0 25 * * 1');
      const bad = loadRuleSet(dir);
      expect(bad.ok ? [] : bad.problems.map((p) => `${p.file}:${p.line} ${p.message}`)).toEqual([
        expect.stringMatching(/^campaigns\/local_digest\.yaml:5 invalid cron expression "0 25 \* \* 1"/),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('simulate', () => {
  const ALL = { email_marketing: true, profiling: true, analytics: true };
  const consent = (userId: string, timestamp: string, purposes: Record<string, boolean> = ALL) => ({ type: 'track', event: 'Consent Updated', userId, timestamp, properties: { purposes } });
  const identify = (userId: string, timestamp: string, timezone: string) => ({ type: 'identify', userId, timestamp, traits: { timezone } });
  const lines = (timeline: Timeline) =>
    timeline.entries.map((e) => [e.at.toISOString(), e.person, e.kind, e.campaign ?? e.segment, e.template].filter((x) => x !== undefined).join(' ') + ` — ${e.reason}`);
  const ruleSet = (cron: string, exit?: object) =>
    buildRuleSet({
      segments: [{ id: 'subscribers', name: 'Subscribers', conditions: { consent: 'email_marketing' } }],
      campaigns: [
        {
          id: 'digest',
          name: 'Digest',
          purposes: ['email_marketing'],
          trigger: { schedule: { cron, timezone: 'Europe/Warsaw', person_timezone: true }, segment: 'subscribers' },
          steps: [{ send: { template: 'digest' } }],
          ...(exit ? { exit } : {}),
        },
      ],
    });
  const run = (events: object[], rules: ReturnType<typeof buildRuleSet>, from: string, until: string) => {
    const parsed = parseSimEvents(jsonl(events), 'events.jsonl', rules.purposes);
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    return simulate(rules, parsed.events, { from: new Date(from), until: new Date(until) });
  };

  it("sends a weekly broadcast at 09:00 in each member's zone, enrolling everyone at the tick in UTC+14", () => {
    const events = [
      identify('tokyo', '2026-12-01T08:00:00Z', 'Asia/Tokyo'),
      identify('nyc', '2026-12-01T08:00:00Z', 'America/New_York'),
      consent('tokyo', '2026-12-01T08:00:00Z'),
      consent('nyc', '2026-12-01T08:00:00Z'),
      consent('none', '2026-12-01T08:00:00Z'),
      // New York unsubscribes from the digest after the tick, before its 09:00: the send is cancelled.
      { type: 'track', event: 'Digest Muted', userId: 'nyc', timestamp: '2026-12-07T10:00:00Z', properties: {} },
    ];
    const timeline = run(events, ruleSet('0 9 * * 1', { event: { name: 'Digest Muted' } }), '2026-12-02T00:00:00Z', '2026-12-08T00:00:00Z');
    const tick = '2026-12-06T19:00:00.000Z';
    expect(lines(timeline)).toEqual([
      `${tick} tokyo enrolled digest — broadcast to segment subscribers at 09:00 Asia/Tokyo (2026-12-07T00:00:00.000Z)`,
      `${tick} nyc enrolled digest — broadcast to segment subscribers at 09:00 America/New_York (2026-12-07T14:00:00.000Z)`,
      `${tick} none enrolled digest — broadcast to segment subscribers at 09:00 Europe/Warsaw (2026-12-07T08:00:00.000Z), the campaign's zone: no valid timezone trait`,
      '2026-12-07T00:00:00.000Z tokyo send digest digest — sent',
      '2026-12-07T00:00:00.000Z tokyo completed digest — all steps done',
      '2026-12-07T08:00:00.000Z none send digest digest — sent',
      '2026-12-07T08:00:00.000Z none completed digest — all steps done',
      '2026-12-07T10:00:00.000Z nyc exited digest — exit event Digest Muted; cancelled send digest at 2026-12-07T14:00:00.000Z',
    ]);
  });

  it('reaches a member far behind every day, though each issue is still pending when the next tick comes', () => {
    // Pago Pago is UTC-11: 09:00 there is 20:00 UTC, 25 hours after the tick at 09:00 in UTC+14.
    const events = [identify('samoa', '2026-12-01T08:00:00Z', 'Pacific/Pago_Pago'), consent('samoa', '2026-12-01T08:00:00Z')];
    // The tick of 2026-12-03 09:00 (UTC+14) runs at 2026-12-02 19:00 UTC, the first after --from.
    const timeline = run(events, ruleSet('0 9 * * *'), '2026-12-02T00:00:00Z', '2026-12-06T00:00:00Z');
    expect(timeline.entries.filter((e) => e.kind === 'send').map((e) => e.at.toISOString())).toEqual([
      '2026-12-03T20:00:00.000Z',
      '2026-12-04T20:00:00.000Z',
      '2026-12-05T20:00:00.000Z',
    ]);
    expect(timeline.entries.filter((e) => e.kind === 'skipped')).toEqual([]);
  });
});

import { parseSimEvents, simulate, type Timeline } from '../../engine/rules/simulate';
import { buildRuleSet, jsonl, shippedPurposes } from '../support/rule-sets';

/** One line per entry: `time person kind subject [step] [template] — reason`. */
function lines(timeline: Timeline, person?: string): string[] {
  return timeline.entries
    .filter((e) => person === undefined || e.person === person)
    .map((e) =>
      [e.at.toISOString(), e.person, e.kind, e.campaign ?? e.segment, e.step, e.template].filter((x) => x !== undefined).join(' ') + ` — ${e.reason}`,
    );
}

const ALL = { email_marketing: true, profiling: true, analytics: true };
const consent = (userId: string, timestamp: string, purposes: Record<string, boolean> = ALL) => ({
  type: 'track',
  event: 'Consent Updated',
  userId,
  timestamp,
  properties: { purposes },
});
const track = (userId: string, event: string, timestamp: string, properties: Record<string, unknown> = {}) => ({ type: 'track', event, userId, timestamp, properties });

function run(events: object[], ruleSet: ReturnType<typeof buildRuleSet>, options: { from?: string; until?: string } = {}): Timeline {
  const parsed = parseSimEvents(jsonl(events), 'events.jsonl', ruleSet.purposes);
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return simulate(ruleSet, parsed.events, {
    ...(options.from ? { from: new Date(options.from) } : {}),
    ...(options.until ? { until: new Date(options.until) } : {}),
  });
}

describe('simulate', () => {
  const welcome = buildRuleSet({
    campaigns: [
      {
        id: 'welcome',
        name: 'Welcome',
        purposes: ['email_marketing'],
        trigger: { event: { name: 'Signed Up' } },
        steps: [{ id: 'hello', send: { template: 'welcome' } }, { wait: '2d' }, { send: { template: 'tips' } }],
        limits: { quiet_hours: { from: '21:00', to: '08:00', timezone: 'Europe/Warsaw' } },
      },
    ],
  });

  it('enrols, sends after delays and quiet hours, and completes', () => {
    const timeline = run([consent('u1', '2026-01-05T10:00:00Z'), track('u1', 'Signed Up', '2026-01-05T21:30:00Z')], welcome);
    expect(lines(timeline)).toEqual([
      '2026-01-05T21:30:00.000Z u1 enrolled welcome — event Signed Up',
      '2026-01-05T21:30:00.000Z u1 deferred welcome hello welcome — quiet hours 21:00–08:00 Europe/Warsaw: deferred to 2026-01-06T07:00:00.000Z',
      '2026-01-06T07:00:00.000Z u1 send welcome hello welcome — due 2026-01-05T21:30:00.000Z, quiet hours 21:00–08:00 Europe/Warsaw: deferred to 2026-01-06T07:00:00.000Z',
      '2026-01-08T07:00:00.000Z u1 send welcome steps.2 tips — sent',
      '2026-01-08T07:00:00.000Z u1 completed welcome — all steps done',
    ]);
    expect(timeline.people).toEqual(['u1']);
  });

  it('places quiet hours in the time zone the person has', () => {
    const identify = { type: 'identify', userId: 'u1', timestamp: '2026-01-05T10:00:00Z', traits: { timezone: 'America/New_York', email: 'jan@example.com' } };
    // 22:30 in Warsaw is 16:30 in New York: sent at once.
    const timeline = run([consent('u1', '2026-01-05T10:00:00Z'), identify, track('u1', 'Signed Up', '2026-01-05T21:30:00Z')], welcome);
    expect(lines(timeline)[1]).toBe('2026-01-05T21:30:00.000Z u1 send welcome hello welcome — sent');
    // Two days later it is 16:30 there too.
    expect(lines(timeline)[2]).toBe('2026-01-07T21:30:00.000Z u1 send welcome steps.2 tips — sent');
  });

  it('skips with the reason when consent is missing', () => {
    const timeline = run(
      [
        consent('u2', '2026-01-05T10:00:00Z', { profiling: true, analytics: true }),
        track('u2', 'Signed Up', '2026-01-05T11:00:00Z'),
        track('u3', 'Signed Up', '2026-01-05T12:00:00Z'),
      ],
      welcome,
    );
    expect(lines(timeline)).toEqual([
      '2026-01-05T11:00:00.000Z u2 skipped welcome — no consent for email_marketing: refused: email_marketing never granted',
      '2026-01-05T12:00:00.000Z u3 skipped welcome — event not linked to the person: refused: analytics never granted',
    ]);
  });

  it('ends the journey when consent is withdrawn, cancelling its scheduled send', () => {
    const timeline = run(
      [consent('u1', '2026-01-05T10:00:00Z'), track('u1', 'Signed Up', '2026-01-05T21:30:00Z'), consent('u1', '2026-01-05T23:00:00Z', { email_marketing: false })],
      welcome,
    );
    expect(lines(timeline).slice(2)).toEqual([
      expect.stringMatching(
        /^2026-01-05T23:00:00.000Z u1 exited welcome — no consent for email_marketing: refused: email_marketing withdrawn by banner on 2026-01-05T23:00:00.000Z; cancelled send welcome at 2026-01-06T07:00:00.000Z$/,
      ),
    ]);
  });

  describe('exit events', () => {
    const cart = buildRuleSet({
      campaigns: [
        {
          id: 'cart',
          name: 'Cart',
          purposes: ['email_marketing', 'profiling'],
          trigger: { event: { name: 'Product Added', where: { price: { gte: 20 } } } },
          exit: { event: { name: 'Order Completed' } },
          steps: [{ wait: '1h' }, { id: 'reminder', send: { template: 'cart_reminder' } }, { wait_until: { event: { name: 'Checkout Started' }, timeout: '1d', on_timeout: 'exit' } }, { send: { template: 'thanks' } }],
          limits: { reenter_after: '7d' },
        },
      ],
    });

    it('cancels what is scheduled when the exit event comes', () => {
      const timeline = run(
        [
          consent('u4', '2026-01-05T09:00:00Z'),
          track('u4', 'Product Added', '2026-01-05T10:00:00Z', { price: 5 }),
          track('u4', 'Product Added', '2026-01-05T10:05:00Z', { price: 25 }),
          track('u4', 'Product Added', '2026-01-05T10:10:00Z', { price: 30 }),
          track('u4', 'Order Completed', '2026-01-05T10:30:00Z'),
        ],
        cart,
      );
      expect(lines(timeline)).toEqual([
        '2026-01-05T10:05:00.000Z u4 enrolled cart — event Product Added',
        '2026-01-05T10:10:00.000Z u4 skipped cart — already enrolled: entry 1 active since 2026-01-05T10:05:00.000Z',
        '2026-01-05T10:30:00.000Z u4 exited cart — exit event Order Completed; cancelled wait until 2026-01-05T11:05:00.000Z',
      ]);
    });

    it('waits for an event, and exits when it does not come', () => {
      const timeline = run(
        [
          consent('u5', '2026-01-05T09:00:00Z'),
          consent('u6', '2026-01-05T09:00:00Z'),
          track('u5', 'Product Added', '2026-01-05T10:00:00Z', { price: 25 }),
          track('u6', 'Product Added', '2026-01-05T10:00:00Z', { price: 25 }),
          track('u5', 'Checkout Started', '2026-01-05T12:00:00Z'),
          track('u6', 'Product Added', '2026-01-13T10:00:00Z', { price: 25 }),
        ],
        cart,
      );
      expect(lines(timeline, 'u5')).toEqual([
        '2026-01-05T10:00:00.000Z u5 enrolled cart — event Product Added',
        '2026-01-05T11:00:00.000Z u5 send cart reminder cart_reminder — sent',
        '2026-01-05T12:00:00.000Z u5 send cart steps.3 thanks — sent',
        '2026-01-05T12:00:00.000Z u5 completed cart — all steps done',
      ]);
      expect(lines(timeline, 'u6')).toEqual([
        '2026-01-05T10:00:00.000Z u6 enrolled cart — event Product Added',
        '2026-01-05T11:00:00.000Z u6 send cart reminder cart_reminder — sent',
        '2026-01-06T11:00:00.000Z u6 exited cart — no Checkout Started within 1d',
        // re-entry after 7d
        '2026-01-13T10:00:00.000Z u6 enrolled cart — event Product Added',
        '2026-01-13T11:00:00.000Z u6 send cart reminder cart_reminder — sent',
        '2026-01-14T11:00:00.000Z u6 exited cart — no Checkout Started within 1d',
      ]);
    });
  });

  it('enters a behavioural segment on the Nth event and leaves it when the window passes', () => {
    const ruleSet = buildRuleSet({
      segments: [{ id: 'engaged', name: 'Engaged', conditions: { events: { name: 'Article Read', at_least: 3, within: '7d' } } }],
      campaigns: [
        {
          id: 'fans',
          name: 'Fans',
          purposes: ['email_marketing'],
          trigger: { segment_entered: 'engaged' },
          steps: [{ set_trait: { name: 'plan', value: 'fan' } }, { send: { template: 'fan' } }],
        },
      ],
    });
    const timeline = run(
      [
        consent('u7', '2026-01-01T08:00:00Z'),
        track('u7', 'Article Read', '2026-01-01T10:00:00Z'),
        track('u7', 'Article Read', '2026-01-02T10:00:00Z'),
        track('u7', 'Article Read', '2026-01-03T10:00:00Z'),
        track('u7', 'Article Read', '2026-01-04T10:00:00Z'),
      ],
      ruleSet,
    );
    expect(lines(timeline)).toEqual([
      '2026-01-03T10:00:00.000Z u7 segment_entered engaged — Article Read: 3 of at least 3 within 7d',
      '2026-01-03T10:00:00.000Z u7 enrolled fans — entered segment engaged',
      '2026-01-03T10:00:00.000Z u7 trait_set fans steps.0 — plan = "fan"',
      '2026-01-03T10:00:00.000Z u7 send fans steps.1 fan — sent',
      '2026-01-03T10:00:00.000Z u7 completed fans — all steps done',
      // Four reads: the segment holds until the second one leaves the window.
      '2026-01-09T10:00:00.000Z u7 segment_left engaged — Article Read: 2 of at least 3 within 7d',
    ]);
  });

  it('sends a weekly broadcast to the members of its segment at each tick', () => {
    const ruleSet = buildRuleSet({
      segments: [{ id: 'subscribers', name: 'Subscribers', conditions: { consent: 'email_marketing' } }],
      campaigns: [
        {
          id: 'digest',
          name: 'Digest',
          purposes: ['email_marketing'],
          trigger: { schedule: { cron: '0 9 * * 1', timezone: 'Europe/Warsaw' }, segment: 'subscribers' },
          steps: [{ send: { template: 'digest' } }],
        },
      ],
    });
    const timeline = run(
      [consent('u8', '2026-01-01T08:00:00Z'), consent('u9', '2026-01-01T08:00:00Z', { profiling: true, analytics: true }), consent('u8', '2026-01-14T08:00:00Z', { email_marketing: false })],
      ruleSet,
      { from: '2026-01-01T00:00:00Z', until: '2026-01-31T00:00:00Z' },
    );
    expect(lines(timeline)).toEqual([
      '2026-01-01T08:00:00.000Z u8 segment_entered subscribers — consent email_marketing: allowed: email_marketing granted by double_opt_in on 2026-01-01T08:00:00.000Z',
      // Mondays at 09:00 in Warsaw (UTC+1).
      '2026-01-05T08:00:00.000Z u8 enrolled digest — broadcast to segment subscribers',
      '2026-01-05T08:00:00.000Z u8 send digest steps.0 digest — sent',
      '2026-01-05T08:00:00.000Z u8 completed digest — all steps done',
      '2026-01-12T08:00:00.000Z u8 enrolled digest — broadcast to segment subscribers',
      '2026-01-12T08:00:00.000Z u8 send digest steps.0 digest — sent',
      '2026-01-12T08:00:00.000Z u8 completed digest — all steps done',
      expect.stringMatching(/^2026-01-14T08:00:00.000Z u8 segment_left subscribers — consent email_marketing: refused: email_marketing withdrawn/),
    ]);
  });

  it('treats events before --from as history and replays nothing after --until', () => {
    const ruleSet = buildRuleSet({
      segments: [{ id: 'engaged', name: 'Engaged', conditions: { events: { name: 'Article Read', at_least: 2, within: '7d' } } }],
      campaigns: [{ id: 'fans', name: 'Fans', purposes: ['email_marketing'], trigger: { segment_entered: 'engaged' }, steps: [{ wait: '1d' }, { send: { template: 'fan' } }] }],
    });
    const events = [
      consent('u1', '2026-01-01T08:00:00Z'),
      track('u1', 'Article Read', '2026-01-01T10:00:00Z'),
      track('u1', 'Article Read', '2026-01-02T10:00:00Z'),
      consent('u2', '2026-01-01T08:00:00Z'),
      track('u2', 'Article Read', '2026-01-03T10:00:00Z'),
      track('u2', 'Article Read', '2026-01-03T11:00:00Z'),
    ];
    expect(lines(run(events, ruleSet, { from: '2026-01-03T00:00:00Z', until: '2026-01-04T10:30:00Z' }))).toEqual([
      '2026-01-03T11:00:00.000Z u2 segment_entered engaged — Article Read: 2 of at least 2 within 7d',
      '2026-01-03T11:00:00.000Z u2 enrolled fans — entered segment engaged',
    ]);
  });

  it('applies the frequency cap across campaigns, again at send time', () => {
    const ruleSet = buildRuleSet({
      campaigns: ['a', 'b', 'c'].map((id, i) => ({
        id,
        name: id,
        purposes: ['email_marketing'],
        trigger: { event: { name: 'Go' } },
        steps: [{ wait: `${i + 1}h` }, { send: { template: id } }],
        limits: { frequency_cap: { max: 2, per: '1d' } },
      })),
    });
    const timeline = run([consent('u1', '2026-01-01T08:00:00Z'), track('u1', 'Go', '2026-01-01T10:00:00Z')], ruleSet);
    expect(lines(timeline).filter((l) => / (send|skipped) /.test(l))).toEqual([
      '2026-01-01T11:00:00.000Z u1 send a steps.1 a — sent',
      '2026-01-01T12:00:00.000Z u1 send b steps.1 b — sent',
      '2026-01-01T13:00:00.000Z u1 skipped c steps.1 — frequency cap: 2 email sends in the 1d before 2026-01-01T13:00:00.000Z, at most 2',
    ]);
  });
});

describe('parseSimEvents', () => {
  const catalog = shippedPurposes();

  it('reads JSON lines, skipping blank ones', () => {
    const parsed = parseSimEvents(`${JSON.stringify(track('u1', 'Go', '2026-01-01T10:00:00Z'))}\n\n${JSON.stringify({ type: 'page', anonymousId: 'a1', name: 'Home', timestamp: '2026-01-01T11:00:00Z' })}\n`, 'e.jsonl', catalog);
    expect(parsed.ok && parsed.events.map((e) => e.type)).toEqual(['track', 'page']);
  });

  it('names the file and line of each bad event', () => {
    const text = [
      JSON.stringify(track('u1', 'Go', '2026-01-01T10:00:00Z')),
      '{"type": "track", "event": "Go", "userId": "u1"',
      JSON.stringify({ type: 'track', event: 'Go', userId: 'u1' }),
      JSON.stringify({ type: 'click', userId: 'u1', timestamp: '2026-01-01T10:00:00Z' }),
      JSON.stringify({ type: 'track', event: 'Go', timestamp: '2026-01-01T10:00:00Z' }),
      JSON.stringify(consent('u1', '2026-01-01T10:00:00Z', { newsletter: true })),
      JSON.stringify({ ...track('u1', 'Go', 'yesterday') }),
    ].join('\n');
    const parsed = parseSimEvents(text, 'events.jsonl', catalog);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.problems).toEqual([
      expect.stringMatching(/^events\.jsonl:2: not valid JSON: /),
      'events.jsonl:3: timestamp: expected a timestamp: the time the event happened, e.g. 2026-11-29T10:00:00Z',
      'events.jsonl:4: type: expected one of track, identify, page, screen, group, alias',
      'events.jsonl:5: userId: expected userId or anonymousId (or both)',
      'events.jsonl:6: properties.purposes.newsletter: unknown purpose; declared in rules/purposes.yaml: email_marketing, profiling, analytics',
      'events.jsonl:7: timestamp: expected an ISO 8601 date-time with a time zone, e.g. 2026-11-29T10:00:00Z',
    ]);
  });
});

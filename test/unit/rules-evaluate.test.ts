import { compileRuleSet } from '../../engine/rules/compile';
import { evaluateSegments, exitsFor, triggeredCampaigns, type Enrolment } from '../../engine/rules/evaluate';
import { ALL_CONSENT, buildRuleSet, consentOf, shippedPurposes, snapshotOf, trackEvent } from '../support/rule-sets';

const catalog = shippedPurposes();
const DAY = 86_400_000;
const NOW = new Date('2026-03-10T12:00:00Z');
const ago = (days: number) => new Date(NOW.getTime() - days * DAY);

const send = (template: string) => ({ send: { template } });

const ruleSet = buildRuleSet({
  segments: [
    // Refers to `engaged`, declared after it: the compiler must order them.
    { id: 'super_fans', name: 'Super fans', conditions: { all: [{ in_segment: 'engaged' }, { trait: 'plan', equals: 'pro' }] } },
    { id: 'engaged', name: 'Engaged', conditions: { events: { name: 'Article Read', at_least: 2, within: '7d' } } },
    { id: 'subscribers', name: 'Subscribers', conditions: { consent: 'email_marketing' } },
    { id: 'contacted', name: 'Contacted', manual: true },
  ],
  campaigns: [
    {
      id: 'cart',
      name: 'Cart',
      purposes: ['email_marketing'],
      trigger: { event: { name: 'Product Added', where: { price: { gte: 20 } } } },
      steps: [send('cart_reminder')],
      exit: { event: { name: 'Order Completed' } },
      limits: { reenter_after: '7d' },
    },
    {
      id: 'any_track',
      name: 'Any track event from pro users',
      purposes: ['email_marketing'],
      trigger: { event: { type: 'track' } },
      conditions: { trait: 'plan', equals: 'pro' },
      steps: [send('hello')],
      limits: { once_per_person: false },
    },
    {
      id: 'pricing_page',
      name: 'Pricing page',
      purposes: ['email_marketing'],
      trigger: { event: { type: 'page', name: 'Pricing' } },
      steps: [{ wait_until: { event: { name: 'Demo Booked' }, timeout: '3d' } }, send('pricing')],
    },
    {
      id: 'welcome',
      name: 'Welcome',
      purposes: ['email_marketing'],
      trigger: { segment_entered: 'subscribers' },
      steps: [send('welcome')],
      exit: { condition: { not: { in_segment: 'subscribers' } } },
    },
    {
      id: 'digest',
      name: 'Digest',
      purposes: ['email_marketing'],
      trigger: { schedule: { cron: '0 9 * * 1' }, segment: 'subscribers' },
      steps: [send('digest'), { branch: { if: { events: { name: 'Order Completed', at_least: 1, within: '30d' } }, then: [send('thanks')] } }],
    },
  ],
});
const compiled = compileRuleSet(ruleSet);
const ids = (list: readonly { id: string }[]) => list.map((c) => c.id);

describe('compileRuleSet', () => {
  it('orders segments after those they refer to', () => {
    const order = ids(compiled.segments);
    expect(order.indexOf('engaged')).toBeLessThan(order.indexOf('super_fans'));
    expect(compiled.segmentById.get('contacted')).toMatchObject({ manual: true, condition: null });
    expect(compiled.segmentById.get('super_fans')?.dependsOn).toEqual(['engaged']);
  });

  it('indexes campaigns by the events that can trigger them', () => {
    expect(ids(compiled.campaignsForEvent('track', 'Product Added'))).toEqual(['cart', 'any_track']);
    expect(ids(compiled.campaignsForEvent('track', 'Something Else'))).toEqual(['any_track']);
    expect(ids(compiled.campaignsForEvent('page', 'Pricing'))).toEqual(['pricing_page']);
    expect(ids(compiled.campaignsForEvent('page', 'Home'))).toEqual([]);
    expect(ids(compiled.campaignsForEvent('identify', null))).toEqual([]);
    expect(ids(compiled.campaignsForSegmentChange('subscribers', 'entered'))).toEqual(['welcome']);
    expect(ids(compiled.campaignsForSegmentChange('subscribers', 'left'))).toEqual([]);
    expect(ids(compiled.campaignsExitingOn('track', 'Order Completed'))).toEqual(['cart']);
    expect(ids(compiled.campaignsWaitingFor('track', 'Demo Booked'))).toEqual(['pricing_page']);
    expect(ids(compiled.scheduled)).toEqual(['digest']);
  });

  it('says which events the rules need and how far back', () => {
    expect(compiled.needs.events).toEqual(
      expect.arrayContaining([
        { type: 'track', name: 'Article Read', windowMs: 7 * DAY },
        { type: 'track', name: 'Order Completed', windowMs: 30 * DAY },
        { type: 'track', name: 'Demo Booked', windowMs: 3 * DAY },
      ]),
    );
    expect(compiled.needs.events).toHaveLength(3);
    expect(compiled.needs.maxWindowMs).toBe(30 * DAY);
    expect(compiled.needs.windowFor('track', 'Article Read')).toBe(7 * DAY);
    expect(compiled.needs.windowFor('track', 'Product Added')).toBeNull();
  });

  it('carries the versions', () => {
    expect(compiled.version).toBe(ruleSet.version);
    expect(compiled.campaigns.get('cart')?.version).toBe(ruleSet.campaigns.get('cart')?.hash);
  });
});

describe('evaluateSegments', () => {
  const reads = [trackEvent('Article Read', ago(6)), trackEvent('Article Read', ago(1))];

  it('evaluates in dependency order, later segments seeing earlier results', () => {
    const snapshot = snapshotOf({ traits: { plan: 'pro' }, events: reads, segments: new Set(['contacted']) });
    const results = evaluateSegments(compiled, snapshot, NOW, catalog);
    expect(results.map((r) => r.segmentId)).not.toContain('contacted');
    const byId = new Map(results.map((r) => [r.segmentId, r]));
    expect(byId.get('engaged')).toEqual({
      segmentId: 'engaged',
      member: true,
      changed: 'entered',
      nextChangeAt: new Date(ago(6).getTime() + 7 * DAY),
      reason: 'Article Read: 2 of at least 2 within 7d',
    });
    // super_fans has no window of its own, but follows engaged's.
    expect(byId.get('super_fans')).toMatchObject({ member: true, changed: 'entered', nextChangeAt: new Date(ago(6).getTime() + 7 * DAY) });
    expect(byId.get('subscribers')).toMatchObject({ member: true, changed: 'entered', nextChangeAt: null });
  });

  it('reports leaving and staying', () => {
    const snapshot = snapshotOf({ segments: new Set(['engaged', 'subscribers']), events: reads.slice(1) });
    const byId = new Map(evaluateSegments(compiled, snapshot, NOW, catalog).map((r) => [r.segmentId, r]));
    expect(byId.get('engaged')).toMatchObject({ member: false, changed: 'left' });
    expect(byId.get('subscribers')).toMatchObject({ member: true, changed: null });
    expect(byId.get('super_fans')).toMatchObject({ member: false, changed: null, reason: 'not in segment engaged' });
  });

  it('puts nobody in a profiling segment without a purpose allowing build_segments; a consent-only list needs none', () => {
    const snapshot = snapshotOf({
      consent: consentOf({ email_marketing: 'granted', profiling: 'withdrawn' }),
      segments: new Set(['subscribers', 'engaged']),
      events: reads,
    });
    const results = evaluateSegments(compiled, snapshot, NOW, catalog);
    for (const r of results.filter((x) => x.segmentId !== 'subscribers')) {
      expect(r.member).toBe(false);
      expect(r.reason).toMatch(/^no consent to build segments: refused: profiling withdrawn by banner/);
    }
    expect(results.find((r) => r.segmentId === 'engaged')?.changed).toBe('left');
    // `subscribers` is everyone who agreed to email_marketing: a list, not a profile (GDPR Art. 4(4)).
    expect(results.find((r) => r.segmentId === 'subscribers')).toMatchObject({ member: true, changed: null });
    expect(compiled.segmentById.get('subscribers')?.profiling).toBe(false);
    expect(compiled.segmentById.get('engaged')?.profiling).toBe(true);
  });
});

describe('triggeredCampaigns', () => {
  const added = (price: number) => trackEvent('Product Added', NOW, { price });
  const none: Enrolment[] = [];

  it('enrols in each campaign the event matches, with the entry number and the reason', () => {
    const decisions = triggeredCampaigns(compiled, { kind: 'event', event: added(25) }, snapshotOf({ traits: { plan: 'pro' } }), none, NOW, catalog);
    expect(decisions).toEqual([
      { campaignId: 'cart', campaignVersion: ruleSet.campaigns.get('cart')?.hash, outcome: 'enrol', entry: 1, reason: 'event Product Added' },
      { campaignId: 'any_track', campaignVersion: ruleSet.campaigns.get('any_track')?.hash, outcome: 'enrol', entry: 1, reason: 'event any track; plan equals "pro"' },
    ]);
  });

  it('leaves out campaigns whose property filters do not match', () => {
    expect(triggeredCampaigns(compiled, { kind: 'event', event: added(5) }, snapshotOf(), none, NOW, catalog).map((d) => d.campaignId)).toEqual(['any_track']);
  });

  it('skips with the condition that is false', () => {
    const [decision] = triggeredCampaigns(compiled, { kind: 'event', event: trackEvent('Other', NOW) }, snapshotOf({ traits: { plan: 'free' } }), none, NOW, catalog);
    expect(decision).toMatchObject({ campaignId: 'any_track', outcome: 'skip', reason: 'condition false: plan is "free", expected equals "pro"' });
  });

  it('skips without consent to the campaign purposes, naming the purpose', () => {
    const snapshot = snapshotOf({ consent: consentOf({ profiling: 'granted', analytics: 'granted' }) });
    const [decision] = triggeredCampaigns(compiled, { kind: 'event', event: added(25) }, snapshot, none, NOW, catalog);
    expect(decision).toMatchObject({ campaignId: 'cart', outcome: 'skip', reason: 'no consent for email_marketing: refused: email_marketing never granted' });
  });

  it('skips event and segment triggers without consent to behavioural triggers', () => {
    const snapshot = snapshotOf({ consent: consentOf({ email_marketing: 'granted', profiling: 'withdrawn' }) });
    const [byEvent] = triggeredCampaigns(compiled, { kind: 'event', event: added(25) }, snapshot, none, NOW, catalog);
    expect(byEvent?.reason).toMatch(/^no consent for behavioural triggers: refused: profiling withdrawn by banner on /);
    // Entering a consent-only list is not behaviour: the welcome starts without profiling consent.
    const [bySegment] = triggeredCampaigns(compiled, { kind: 'segment', segmentId: 'subscribers', change: 'entered' }, snapshot, none, NOW, catalog);
    expect(bySegment).toMatchObject({ campaignId: 'welcome', outcome: 'enrol' });
    // A broadcast is not started by what the person does.
    const member = snapshotOf({ consent: snapshot.consent, segments: new Set(['subscribers']) });
    expect(triggeredCampaigns(compiled, { kind: 'schedule', campaignId: 'digest' }, member, none, NOW, catalog)).toMatchObject([{ outcome: 'enrol', entry: 1 }]);
  });

  it('applies the limits: active, once per person, re-entry after a period', () => {
    const trigger = { kind: 'event', event: added(25) } as const;
    const cartOnly = (enrolments: Enrolment[]) => triggeredCampaigns(compiled, trigger, snapshotOf(), enrolments, NOW, catalog)[0];
    expect(cartOnly([{ campaignId: 'cart', entry: 1, startedAt: ago(1), active: true }])?.reason).toBe(
      `already enrolled: entry 1 active since ${ago(1).toISOString()}`,
    );
    expect(cartOnly([{ campaignId: 'cart', entry: 1, startedAt: ago(3), active: false }])?.reason).toBe(
      `re-entry not before ${new Date(ago(3).getTime() + 7 * DAY).toISOString()} (entry 1 started ${ago(3).toISOString()}, reenter_after 7d)`,
    );
    expect(cartOnly([{ campaignId: 'cart', entry: 1, startedAt: ago(8), active: false }, { campaignId: 'cart', entry: 2, startedAt: ago(7), active: false }])).toMatchObject({
      outcome: 'enrol',
      entry: 3,
    });
    const welcome = triggeredCampaigns(
      compiled,
      { kind: 'segment', segmentId: 'subscribers', change: 'entered' },
      snapshotOf(),
      [{ campaignId: 'welcome', entry: 1, startedAt: ago(30), active: false }],
      NOW,
      catalog,
    );
    expect(welcome).toEqual([
      expect.objectContaining({ outcome: 'skip', reason: `already enrolled once (entry 1 on ${ago(30).toISOString()}); once_per_person` }),
    ]);
  });

  it('enrols a broadcast member at each tick, not a non-member', () => {
    const past: Enrolment[] = [{ campaignId: 'digest', entry: 1, startedAt: ago(7), active: false }];
    expect(triggeredCampaigns(compiled, { kind: 'schedule', campaignId: 'digest' }, snapshotOf({ segments: new Set(['subscribers']) }), past, NOW, catalog)).toMatchObject([
      { outcome: 'enrol', entry: 2, reason: 'broadcast to segment subscribers' },
    ]);
    expect(triggeredCampaigns(compiled, { kind: 'schedule', campaignId: 'digest' }, snapshotOf(), none, NOW, catalog)).toMatchObject([
      { outcome: 'skip', reason: 'not in segment subscribers' },
    ]);
  });
});

describe('exitsFor', () => {
  const member = snapshotOf({ segments: new Set(['subscribers']) });

  it('ends journeys on their exit event, and only those', () => {
    expect(exitsFor(compiled, trackEvent('Order Completed', NOW), member, ['cart', 'welcome', 'pricing_page'], NOW, catalog)).toEqual([
      { campaignId: 'cart', campaignVersion: ruleSet.campaigns.get('cart')?.hash, by: 'event', reason: 'exit event Order Completed' },
    ]);
    expect(exitsFor(compiled, trackEvent('Product Added', NOW), member, ['cart'], NOW, catalog)).toEqual([]);
  });

  it('ends journeys whose exit condition holds', () => {
    expect(exitsFor(compiled, null, snapshotOf(), ['welcome'], NOW, catalog)).toMatchObject([
      { campaignId: 'welcome', by: 'condition', reason: 'exit condition: not in segment subscribers' },
    ]);
  });

  it('ends journeys whose consent is gone, and those of removed campaigns', () => {
    const withdrawn = snapshotOf({ consent: consentOf({ ...ALL_CONSENT, email_marketing: 'withdrawn' }), segments: new Set(['subscribers']) });
    const [exit] = exitsFor(compiled, null, withdrawn, ['cart'], NOW, catalog);
    expect(exit).toMatchObject({ campaignId: 'cart', by: 'consent' });
    expect(exit?.reason).toMatch(/^no consent for email_marketing: refused: email_marketing withdrawn by banner/);
    expect(exitsFor(compiled, null, member, ['gone'], NOW, catalog)).toEqual([
      { campaignId: 'gone', campaignVersion: null, by: 'removed', reason: 'the campaign is no longer in the rule set' },
    ]);
  });
});

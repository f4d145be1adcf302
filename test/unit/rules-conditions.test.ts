import { compileCondition, matchesEvent, type SnapshotEvent } from '../../engine/rules/conditions';
import { Condition, EventMatch } from '../../schemas/rules/conditions';
import { consentOf, shippedPurposes, snapshotOf, trackEvent } from '../support/rule-sets';

const catalog = shippedPurposes();
const DAY = 86_400_000;
const T0 = Date.parse('2026-03-01T12:00:00Z');
const day = (n: number) => new Date(T0 + n * DAY);

function evaluate(condition: unknown, snapshot = snapshotOf(), now = day(0)) {
  return compileCondition(Condition.parse(condition))(snapshot, now, catalog);
}

describe('matchesEvent', () => {
  const order = trackEvent('Order Completed', day(0), {
    total: 120,
    amount: '99.50',
    currency: 'PLN',
    coupon: null,
    tags: ['sale', 'gift'],
    title: 'Winter sale',
    product: { sku: 'A-1' },
  });
  const match = (spec: unknown) => matchesEvent(EventMatch.parse(spec), order);

  it('matches the type and the name, any name when none is given', () => {
    expect(match({ name: 'Order Completed' })).toBe(true);
    expect(match({ name: 'Product Added' })).toBe(false);
    expect(match({})).toBe(true);
    expect(match({ type: 'page' })).toBe(false);
    const page: SnapshotEvent = { type: 'page', name: 'Pricing', properties: {}, occurredAt: day(0) };
    expect(matchesEvent(EventMatch.parse({ type: 'page', name: 'Pricing' }), page)).toBe(true);
  });

  it.each([
    [{ currency: 'PLN' }, true],
    [{ currency: 'EUR' }, false],
    [{ total: 120 }, true],
    [{ amount: 99.5 }, true],
    [{ currency: { equals: 'PLN' } }, true],
    [{ currency: { not_equals: 'PLN' } }, false],
    [{ missing: { not_equals: 'PLN' } }, true],
    [{ currency: { in: ['EUR', 'PLN'] } }, true],
    [{ currency: { in: ['EUR'] } }, false],
    [{ currency: { not_in: ['EUR'] } }, true],
    [{ missing: { not_in: ['EUR'] } }, true],
    [{ currency: { exists: true } }, true],
    [{ coupon: { exists: true } }, false],
    [{ coupon: { exists: false } }, true],
    [{ missing: { exists: false } }, true],
    [{ total: { gt: 119 } }, true],
    [{ total: { gt: 120 } }, false],
    [{ total: { gte: 120 } }, true],
    [{ total: { lt: 120 } }, false],
    [{ total: { lte: 120 } }, true],
    [{ amount: { gte: 99.5 } }, true],
    [{ currency: { gte: 1 } }, false],
    [{ missing: { lt: 1 } }, false],
    [{ title: { contains: 'sale' } }, true],
    [{ title: { contains: 'Sale' } }, false],
    [{ tags: { contains: 'gift' } }, true],
    [{ tags: { contains: 'new' } }, false],
    [{ 'product.sku': 'A-1' }, true],
    [{ 'product.sku': { exists: true }, currency: 'PLN', total: { gte: 100 } }, true],
    [{ 'product.sku': { exists: true }, currency: 'EUR' }, false],
  ])('where %j → %s', (where, expected) => {
    expect(match({ name: 'Order Completed', where })).toBe(expected);
  });
});

describe('compileCondition', () => {
  it('tests traits with a reason either way', () => {
    const snapshot = snapshotOf({ traits: { plan: 'free' } });
    expect(evaluate({ trait: 'plan', in: ['pro', 'team'] }, snapshot)).toEqual({
      value: false,
      nextChangeAt: null,
      reason: 'plan is "free", expected in ["pro","team"]',
    });
    expect(evaluate({ trait: 'plan', equals: 'free' }, snapshot)).toMatchObject({ value: true, reason: 'plan equals "free"' });
    expect(evaluate({ trait: 'country', exists: true }, snapshot)).toMatchObject({ value: false, reason: 'country is not set, expected is set' });
  });

  it('asks the consent gate', () => {
    const granted = snapshotOf({ consent: consentOf({ profiling: 'granted' }) });
    const withdrawn = snapshotOf({ consent: consentOf({ profiling: 'withdrawn' }) });
    expect(evaluate({ consent: 'profiling' }, granted).value).toBe(true);
    const refused = evaluate({ consent: 'profiling' }, withdrawn);
    expect(refused.value).toBe(false);
    expect(refused.reason).toMatch(/^consent profiling: refused: profiling withdrawn by banner/);
    expect(evaluate({ consent: 'email_marketing' }, snapshotOf({ consent: new Map() })).reason).toBe(
      'consent email_marketing: refused: email_marketing never granted',
    );
  });

  it('reads segment membership', () => {
    expect(evaluate({ in_segment: 'vip' }, snapshotOf({ segments: new Set(['vip']) }))).toMatchObject({ value: true, reason: 'in segment vip' });
    expect(evaluate({ in_segment: 'vip' })).toMatchObject({ value: false, reason: 'not in segment vip' });
  });

  describe('behaviour', () => {
    const reads = (...days: number[]) => days.map((d) => trackEvent('Article Read', day(d)));
    const atLeast3 = { events: { name: 'Article Read', at_least: 3, within: '14d' } };

    it('counts matching events in the window and says when the oldest counted one leaves it', () => {
      const snapshot = snapshotOf({ events: [...reads(-20, -10, -5, -1), trackEvent('Page Viewed', day(-1))] });
      expect(evaluate(atLeast3, snapshot)).toEqual({
        value: true,
        nextChangeAt: new Date(day(-10).getTime() + 14 * DAY),
        reason: 'Article Read: 3 of at least 3 within 14d',
      });
      // With one more than needed, the second oldest decides.
      const four = snapshotOf({ events: reads(-12, -10, -5, -1) });
      expect(evaluate(atLeast3, four).nextChangeAt).toEqual(new Date(day(-10).getTime() + 14 * DAY));
    });

    it('is false below the count, with no change to expect without events', () => {
      expect(evaluate(atLeast3, snapshotOf({ events: reads(-3, -1) }))).toEqual({
        value: false,
        nextChangeAt: null,
        reason: 'Article Read: 2 of at least 3 within 14d',
      });
    });

    it('counts an event while start < occurredAt <= now', () => {
      const exactlyAtStart = snapshotOf({ events: [...reads(-14, -1, 0)] });
      expect(evaluate(atLeast3, exactlyAtStart).value).toBe(false);
      const future = snapshotOf({ events: [...reads(-2, -1), trackEvent('Article Read', new Date(day(0).getTime() + 1))] });
      expect(evaluate(atLeast3, future).value).toBe(false);
      const edge = snapshotOf({ events: reads(-13, -1, 0) });
      const r = evaluate(atLeast3, edge);
      expect(r.value).toBe(true);
      // At nextChangeAt the value has flipped.
      expect(evaluate(atLeast3, edge, r.nextChangeAt as Date).value).toBe(false);
      expect(evaluate(atLeast3, edge, new Date((r.nextChangeAt as Date).getTime() - 1)).value).toBe(true);
    });

    it('at_most: false over the count until enough events leave the window', () => {
      const atMost1 = { events: { name: 'Article Read', at_most: 1, within: '7d' } };
      const r = evaluate(atMost1, snapshotOf({ events: reads(-6, -4, -2, -1) }));
      expect(r.value).toBe(false);
      // 4 events, at most 1: three must leave; the third oldest leaves at day -2 + 7d.
      expect(r.nextChangeAt).toEqual(new Date(day(-2).getTime() + 7 * DAY));
      expect(evaluate(atMost1, snapshotOf({ events: reads(-6) }))).toEqual({
        value: true,
        nextChangeAt: null,
        reason: 'Article Read: 1 of at most 1 within 7d',
      });
      expect(evaluate({ events: { name: 'Article Read', at_most: 0, within: '30d' } }).value).toBe(true);
    });

    it('at_least and at_most together', () => {
      const between = { events: { name: 'Article Read', at_least: 2, at_most: 3, within: '7d' } };
      const over = evaluate(between, snapshotOf({ events: reads(-6, -5, -3, -1) }));
      expect(over).toMatchObject({ value: false, reason: 'Article Read: 4 of 2 to 3 within 7d' });
      expect(over.nextChangeAt).toEqual(new Date(day(-6).getTime() + 7 * DAY));
      const inside = evaluate(between, snapshotOf({ events: reads(-5, -3, -1) }));
      expect(inside.value).toBe(true);
      expect(inside.nextChangeAt).toEqual(new Date(day(-3).getTime() + 7 * DAY));
    });

    it('applies the property filters', () => {
      const bigOrders = { events: { name: 'Order Completed', where: { total: { gte: 100 } }, at_least: 2, within: '30d' } };
      const events = [trackEvent('Order Completed', day(-3), { total: 150 }), trackEvent('Order Completed', day(-2), { total: 50 })];
      expect(evaluate(bigOrders, snapshotOf({ events })).reason).toBe('Order Completed: 1 of at least 2 within 30d');
    });
  });

  describe('last_seen', () => {
    it('within: true until the threshold passes', () => {
      const r = evaluate({ last_seen: { within: '7d' } }, snapshotOf({ lastSeenAt: day(-2) }));
      expect(r).toMatchObject({ value: true, nextChangeAt: day(5) });
      expect(evaluate({ last_seen: { within: '7d' } }, snapshotOf({ lastSeenAt: day(-8) }))).toMatchObject({ value: false, nextChangeAt: null });
    });

    it('before: false until the threshold passes, then true', () => {
      const r = evaluate({ last_seen: { before: '30d' } }, snapshotOf({ lastSeenAt: day(-2) }));
      expect(r).toMatchObject({ value: false, nextChangeAt: day(28) });
      expect(r.reason).toBe(`last seen ${day(-2).toISOString()}, expected before 30d`);
      expect(evaluate({ last_seen: { before: '30d' } }, snapshotOf({ lastSeenAt: day(-2) }), day(28)).value).toBe(true);
      expect(evaluate({ last_seen: { before: '30d' } }, snapshotOf({ lastSeenAt: null }))).toMatchObject({ value: false, reason: 'never seen, expected last seen before 30d' });
    });
  });

  describe('all, any, not', () => {
    const snapshot = snapshotOf({
      traits: { plan: 'pro' },
      lastSeenAt: day(-1),
      events: [trackEvent('Article Read', day(-3)), trackEvent('Article Read', day(-2))],
    });
    const seen7 = { last_seen: { within: '7d' } }; // flips at day 6
    const reads2 = { events: { name: 'Article Read', at_least: 2, within: '5d' } }; // flips at day 2
    const reads3 = { events: { name: 'Article Read', at_least: 3, within: '5d' } }; // false, no change

    it('all: true until its first child flips; false with the failing reason', () => {
      expect(evaluate({ all: [seen7, reads2, { trait: 'plan', equals: 'pro' }] }, snapshot)).toEqual({
        value: true,
        nextChangeAt: day(2),
        reason: `last seen ${day(-1).toISOString()}, within 7d and Article Read: 2 of at least 2 within 5d and plan equals "pro"`,
      });
      expect(evaluate({ all: [seen7, reads3] }, snapshot)).toEqual({ value: false, nextChangeAt: null, reason: 'Article Read: 2 of at least 3 within 5d' });
    });

    it('all false: flips at the earliest once every failing child has flipped', () => {
      const notSeen7 = { not: seen7 }; // false, flips at day 6
      const notReads2 = { not: reads2 }; // false, flips at day 2
      expect(evaluate({ all: [notSeen7, notReads2] }, snapshot).nextChangeAt).toEqual(day(6));
    });

    it('any: true on the first true child, false with every reason', () => {
      expect(evaluate({ any: [reads3, reads2] }, snapshot)).toMatchObject({ value: true, nextChangeAt: day(2), reason: 'Article Read: 2 of at least 2 within 5d' });
      expect(evaluate({ any: [reads3, { trait: 'plan', equals: 'free' }] }, snapshot)).toEqual({
        value: false,
        nextChangeAt: null,
        reason: 'none of: Article Read: 2 of at least 3 within 5d; plan is "pro", expected equals "free"',
      });
      // Both true: it turns false only once both have flipped.
      expect(evaluate({ any: [seen7, reads2] }, snapshot).nextChangeAt).toEqual(day(6));
    });

    it('not inverts and keeps the time of change', () => {
      expect(evaluate({ not: reads2 }, snapshot)).toEqual({ value: false, nextChangeAt: day(2), reason: 'Article Read: 2 of at least 2 within 5d' });
    });
  });
});

import fc from 'fast-check';
import { clientKey, TokenBuckets } from '../../engine/http/rate-limit';

/** A clock the test moves by hand, in ms. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('token buckets', () => {
  it('lets a burst through at once, then refuses with the seconds until the next token', () => {
    const clock = manualClock();
    const buckets = new TokenBuckets({ perSecond: 2, burst: 5 }, 100, clock.now);
    const answers = Array.from({ length: 7 }, () => buckets.take('a'));
    expect(answers).toEqual([0, 0, 0, 0, 0, 1, 1]);
    // Another key has its own bucket.
    expect(buckets.take('b')).toBe(0);
  });

  it('refills at the rate, never above the burst', () => {
    const clock = manualClock();
    const buckets = new TokenBuckets({ perSecond: 2, burst: 3 }, 100, clock.now);
    for (let i = 0; i < 3; i++) expect(buckets.take('a')).toBe(0);
    expect(buckets.take('a')).toBe(1);
    clock.advance(499);
    expect(buckets.take('a')).toBe(1);
    clock.advance(1);
    expect(buckets.take('a')).toBe(0);
    expect(buckets.take('a')).toBe(1);
    // A long quiet spell fills the bucket to the burst, no further.
    clock.advance(3_600_000);
    expect(Array.from({ length: 4 }, () => buckets.take('a'))).toEqual([0, 0, 0, 1]);
  });

  it('answers Retry-After in whole seconds, rounded up, for slow rates', () => {
    const clock = manualClock();
    const perMinute = new TokenBuckets({ perSecond: 1 / 60, burst: 1 }, 100, clock.now);
    expect(perMinute.take('a')).toBe(0);
    expect(perMinute.take('a')).toBe(60);
    clock.advance(59_500);
    expect(perMinute.take('a')).toBe(1);
    clock.advance(500);
    expect(perMinute.take('a')).toBe(0);
  });

  it('never lets more through than the burst plus what the rate refilled', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0.1, max: 1_000, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 20 })), { maxLength: 100 }),
        (perSecond, burst, steps) => {
          const clock = manualClock();
          const buckets = new TokenBuckets({ perSecond, burst }, 10, clock.now);
          let allowed = 0;
          let elapsedMs = 0;
          for (const [ms, takes] of steps) {
            clock.advance(ms);
            elapsedMs += ms;
            for (let i = 0; i < takes; i++) if (buckets.take('k') === 0) allowed++;
          }
          expect(allowed).toBeLessThanOrEqual(burst + (perSecond * elapsedMs) / 1000 + 1e-9);
        },
      ),
    );
  });

  it('holds at most maxKeys keys: a flood of new keys evicts the oldest, memory stays bounded', () => {
    const clock = manualClock();
    const buckets = new TokenBuckets({ perSecond: 1, burst: 1 }, 1_000, clock.now);
    expect(buckets.take('first')).toBe(0);
    expect(buckets.take('first')).toBe(1);
    for (let i = 0; i < 10_000; i++) buckets.take(`random-${i}`);
    expect(buckets.size).toBe(1_000);
    // The evicted key comes back with a full bucket: what a new address would have had anyway.
    expect(buckets.take('first')).toBe(0);
    expect(buckets.size).toBe(1_000);
    // The newest keys are still held, with their spent buckets.
    expect(buckets.take('random-9999')).toBe(1);
  });
});

describe('client keys', () => {
  it('limits IPv4 per address, IPv6 per /64, and an IPv4-mapped address as its IPv4', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
    expect(clientKey('2001:db8:1:2::1')).not.toBe(clientKey('2001:db8:1:3::1'));
    expect(clientKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('not:an:address')).toBe('not:an:address');
  });
});

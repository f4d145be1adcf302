import { correctedTime } from '../../engine/ingest/clock';

describe('event time (clock-skew correction as Segment does it)', () => {
  const receivedAt = new Date('2026-11-29T12:00:00.000Z');

  it('shifts the timestamp by the difference between the server clock and the device clock', () => {
    // The device clock is 10 minutes slow: it says it sent at 11:50, the server received at 12:00.
    expect(correctedTime('2026-11-29T11:45:00.000Z', '2026-11-29T11:50:00.000Z', receivedAt)?.toISOString()).toBe('2026-11-29T11:55:00.000Z');
  });

  it('takes the timestamp as given without sentAt, and the receive time without a timestamp', () => {
    expect(correctedTime('2026-11-29T11:45:00Z', undefined, receivedAt)?.toISOString()).toBe('2026-11-29T11:45:00.000Z');
    expect(correctedTime(undefined, undefined, receivedAt)).toBe(receivedAt);
  });

  it('does not let a device far in the future push events ahead of the server', () => {
    expect(correctedTime('2027-06-01T00:00:00Z', undefined, receivedAt)).toBe(receivedAt);
  });

  it('refuses times more than five years back and unparseable ones', () => {
    expect(correctedTime('2021-11-01T00:00:00Z', undefined, receivedAt)).toBeUndefined();
    expect(correctedTime('2022-01-01T00:00:00Z', undefined, receivedAt)?.toISOString()).toBe('2022-01-01T00:00:00.000Z');
    expect(correctedTime('not a date', undefined, receivedAt)).toBeUndefined();
  });
});

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_AHEAD_MS = DAY_MS;
/**
 * How far back an event may be dated: five years covers imports of history, and bounds the monthly
 * partitions one write key can make the worker create (about 60, not hundreds).
 */
export const MAX_AGE_MS = 5 * 366 * DAY_MS;

/**
 * The event's time as Segment computes it: a device clock may be wrong, but by the same amount for
 * `timestamp` and `sentAt`, so `timestamp + (receivedAt - sentAt)` is the event time on the server's
 * clock. Without `sentAt` the timestamp is taken as given; without a timestamp, the receive time.
 * A result more than a day ahead of the server is the server's time (a device far in the future).
 */
export function correctedTime(timestamp: string | undefined, sentAt: string | undefined, receivedAt: Date): Date | undefined {
  if (timestamp === undefined) return receivedAt;
  let time = Date.parse(timestamp);
  if (Number.isNaN(time)) return undefined;
  if (sentAt !== undefined) {
    const sent = Date.parse(sentAt);
    if (!Number.isNaN(sent)) time += receivedAt.getTime() - sent;
  }
  if (time > receivedAt.getTime() + MAX_AHEAD_MS) return receivedAt;
  if (time < receivedAt.getTime() - MAX_AGE_MS) return undefined;
  return new Date(time);
}

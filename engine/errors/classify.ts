/**
 * Tells connectivity failures (retry later: 503, job retry) from everything else, by error code and
 * class, never by message text.
 */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

// PostgreSQL SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, crash).
const PG_UNAVAILABLE = /^(08|57P0[1-3])/;

export function isUnavailableError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; name?: unknown; errors?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || PG_UNAVAILABLE.test(e.code))) return true;
  // ioredis rejects commands with these classes while disconnected and the offline queue is off.
  if (e.name === 'MaxRetriesPerRequestError' || e.name === 'ConnectionClosedError') return true;
  if (Array.isArray(e.errors) && e.errors.some(isUnavailableError)) return true;
  return e.cause !== undefined && e.cause !== err && isUnavailableError(e.cause);
}

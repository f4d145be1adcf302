import { AppError } from '../errors';
import { ISO_DATE_TIME } from '../../schemas/segment';

/**
 * The period of an incident report: `--since` and `--until` as an ISO 8601 date-time, or as a time
 * before now (`72h`: the Art. 33(1) window; `7d`, `2w`, `30m`). Pure: `now` is given.
 */

export interface IncidentPeriod {
  readonly since: Date;
  readonly until: Date;
}

const RELATIVE = /^(\d{1,6})(m|h|d|w)$/;
const UNIT_MS: Readonly<Record<string, number>> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

export const PERIOD_RULE =
  'expected an ISO 8601 date-time with a time zone (e.g. 2026-11-29T10:00:00Z, or a date such as 2026-11-29) or a time before now (e.g. 72h, 7d; units m, h, d, w)';

export function parseReportTime(option: string, value: string, now: Date): Date {
  const text = value.trim();
  const relative = RELATIVE.exec(text);
  if (relative) return new Date(now.getTime() - Number(relative[1]) * (UNIT_MS[relative[2] as string] as number));
  const ms = Date.parse(text);
  if (!ISO_DATE_TIME.test(text) || Number.isNaN(ms)) throw new AppError('BAD_REQUEST', `${option} '${value}': ${PERIOD_RULE}`);
  return new Date(ms);
}

export function parseIncidentPeriod(options: { since?: string | undefined; until?: string | undefined }, now: Date): IncidentPeriod {
  if (options.since === undefined) throw new AppError('BAD_REQUEST', `--since is required: ${PERIOD_RULE}`);
  const since = parseReportTime('--since', options.since, now);
  const until = options.until === undefined ? now : parseReportTime('--until', options.until, now);
  if (since > now) throw new AppError('BAD_REQUEST', `--since '${options.since}': expected a time in the past`);
  if (until <= since) throw new AppError('BAD_REQUEST', `--until '${options.until ?? until.toISOString()}': expected a time after --since (${since.toISOString()})`);
  return { since, until };
}

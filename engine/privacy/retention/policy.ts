import type { Capability } from '../../../schemas/purposes-file';
import type { Config } from '../../config';
import type { PurposeCatalog } from '../../consent/purposes';

/**
 * What storage limitation (GDPR Art. 5(1)(e): kept "no longer than is necessary for the purposes")
 * means in this engine, as data: the per-data-category defaults from the configuration and each
 * purpose's `retention` from rules/purposes.yaml. Pure: plan.ts turns it into cutoffs against the
 * database; README "Retention" says the same in words.
 */

export interface PurposeRetention {
  readonly name: string;
  /** As written in purposes.yaml, e.g. `13mo`. */
  readonly retention: string;
  readonly allows: readonly Capability[];
}

export interface RetentionPolicy {
  readonly eventsMonths: number;
  readonly inactiveProfileMonths: number;
  /** At most this many erasure requests a run. */
  readonly batchSize: number;
  /** In file order. */
  readonly purposes: readonly PurposeRetention[];
}

/**
 * An unconfirmed double opt-in grants nothing; once expired it is kept this long, so a late click
 * still hears that the link expired rather than that it is unknown, and then goes.
 */
export const EXPIRED_CONFIRMATION_DAYS = 30;

export function retentionPolicy(config: Config, catalog: PurposeCatalog): RetentionPolicy {
  const r = config.privacy.retention;
  return Object.freeze({
    eventsMonths: r.eventsMonths,
    inactiveProfileMonths: r.inactiveProfileMonths,
    batchSize: r.batchSize,
    purposes: Object.freeze(catalog.all().map((p) => Object.freeze({ name: p.name, retention: p.retention, allows: Object.freeze([...p.allows]) }))),
  });
}

/** `now` less whole calendar months, in UTC; the 31st less a month is the last day of the shorter month. */
export function monthsBefore(now: Date, months: number): Date {
  const target = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - months, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  return new Date(
    Date.UTC(
      target.getUTCFullYear(),
      target.getUTCMonth(),
      Math.min(now.getUTCDate(), lastDay),
      now.getUTCHours(),
      now.getUTCMinutes(),
      now.getUTCSeconds(),
      now.getUTCMilliseconds(),
    ),
  );
}

/**
 * The moment before which data kept for a purpose has outlived it: `13mo` is thirteen calendar
 * months (as RETENTION_EVENTS_MONTHS=13 is), `2y` twenty-four, `6w` forty-two days.
 */
export function retentionCutoff(now: Date, retention: string): Date {
  const match = /^(\d+)(d|w|mo|y)$/.exec(retention);
  if (!match) throw new Error(`invalid retention "${retention}"`);
  const n = Number(match[1]);
  switch (match[2]) {
    case 'd':
      return new Date(now.getTime() - n * 86_400_000);
    case 'w':
      return new Date(now.getTime() - n * 7 * 86_400_000);
    case 'mo':
      return monthsBefore(now, n);
    default:
      return monthsBefore(now, 12 * n);
  }
}

export interface PurposeCutoff extends PurposeRetention {
  readonly cutoff: Date;
}

export function purposeCutoffs(policy: RetentionPolicy, now: Date): PurposeCutoff[] {
  return policy.purposes.map((p) => ({ ...p, cutoff: retentionCutoff(now, p.retention) }));
}

/** The longest retention among these purposes (the earliest cutoff); undefined for none. */
export function longest(cutoffs: readonly PurposeCutoff[]): PurposeCutoff | undefined {
  let best: PurposeCutoff | undefined;
  for (const c of cutoffs) if (!best || c.cutoff < best.cutoff) best = c;
  return best;
}

export const describePurposes = (list: readonly PurposeRetention[]) => list.map((p) => `${p.name} ${p.retention}`).join(', ');

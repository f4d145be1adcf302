import { ConfigError, loadConfig } from '../../engine/config';
import { cutoffsAt } from '../../engine/privacy/retention/cutoffs';
import { type EventPartition, partitionsBefore } from '../../engine/privacy/retention/event-partitions';
import { monthsBefore, retentionCutoff, retentionPolicy } from '../../engine/privacy/retention/policy';
import { shippedCatalog } from '../support/rules';

const problem = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error(`no error for ${JSON.stringify(env)}`);
};

describe('retention configuration', () => {
  it('defaults to 13 months of events, 24 months of inactivity, 1,000 erasures a run, daily at 03:30 UTC', () => {
    expect(loadConfig({}).privacy.retention).toEqual({ eventsMonths: 13, inactiveProfileMonths: 24, batchSize: 1000, cron: '30 3 * * *' });
    expect(loadConfig({ RETENTION_EVENTS_MONTHS: '', RETENTION_CRON: '' }).privacy.retention).toMatchObject({ eventsMonths: 13, cron: '30 3 * * *' });
  });

  it('reads the variables, and RETENTION_CRON=off turns the schedule off', () => {
    const config = loadConfig({ RETENTION_EVENTS_MONTHS: '25', RETENTION_INACTIVE_PROFILE_MONTHS: '36', RETENTION_BATCH_SIZE: '50', RETENTION_CRON: ' 0 2 * * 0 ' });
    expect(config.privacy.retention).toEqual({ eventsMonths: 25, inactiveProfileMonths: 36, batchSize: 50, cron: '0 2 * * 0' });
    expect(loadConfig({ RETENTION_CRON: 'off' }).privacy.retention.cron).toBeUndefined();
    expect(loadConfig({ RETENTION_CRON: '@daily' }).privacy.retention.cron).toBe('@daily');
  });

  const MONTHS = 'expected a whole number of months from 1 to 1200';
  const CRON = 'expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), e.g. "30 3 * * *", one of @hourly, @daily, @weekly, @monthly, or off';
  it.each([
    [{ RETENTION_EVENTS_MONTHS: '0' }, `RETENTION_EVENTS_MONTHS="0": ${MONTHS}`],
    [{ RETENTION_EVENTS_MONTHS: '13mo' }, `RETENTION_EVENTS_MONTHS="13mo": ${MONTHS}`],
    [{ RETENTION_EVENTS_MONTHS: '1.5' }, `RETENTION_EVENTS_MONTHS="1.5": ${MONTHS}`],
    [{ RETENTION_EVENTS_MONTHS: '-3' }, `RETENTION_EVENTS_MONTHS="-3": ${MONTHS}`],
    [{ RETENTION_INACTIVE_PROFILE_MONTHS: '99999' }, `RETENTION_INACTIVE_PROFILE_MONTHS="99999": ${MONTHS}`],
    [{ RETENTION_INACTIVE_PROFILE_MONTHS: 'two years' }, `RETENTION_INACTIVE_PROFILE_MONTHS="two years": ${MONTHS}`],
    [{ RETENTION_BATCH_SIZE: '0' }, 'RETENTION_BATCH_SIZE="0": expected a whole number of profiles from 1 to 100000'],
    [{ RETENTION_CRON: 'daily' }, `RETENTION_CRON="daily": ${CRON}`],
    [{ RETENTION_CRON: '30 3 * *' }, `RETENTION_CRON="30 3 * *": ${CRON}`],
    [{ RETENTION_CRON: '0 30 3 * * *' }, `RETENTION_CRON="0 30 3 * * *": ${CRON}`],
    [{ RETENTION_CRON: '61 3 * * *' }, `RETENTION_CRON="61 3 * * *": ${CRON}`],
    [{ RETENTION_CRON: '@secondly' }, `RETENTION_CRON="@secondly": ${CRON}`],
  ])('rejects %j naming the variable and what is allowed', (env, expected) => {
    expect(problem(env)).toBe(`invalid configuration: ${expected}`);
  });
});

describe('retention cutoffs', () => {
  it('counts months on the calendar, in UTC, keeping the time of day', () => {
    expect(monthsBefore(new Date('2026-11-29T05:06:07.123Z'), 13).toISOString()).toBe('2025-10-29T05:06:07.123Z');
    expect(monthsBefore(new Date('2026-03-31T12:00:00Z'), 1).toISOString()).toBe('2026-02-28T12:00:00.000Z');
    expect(monthsBefore(new Date('2028-03-31T12:00:00Z'), 1).toISOString()).toBe('2028-02-29T12:00:00.000Z');
    expect(monthsBefore(new Date('2026-01-15T00:00:00Z'), 24).toISOString()).toBe('2024-01-15T00:00:00.000Z');
    const now = new Date('2026-11-29T00:00:00Z');
    expect(retentionCutoff(now, '13mo')).toEqual(monthsBefore(now, 13));
    expect(retentionCutoff(now, '2y')).toEqual(monthsBefore(now, 24));
    expect(retentionCutoff(now, '6w').toISOString()).toBe('2026-10-18T00:00:00.000Z');
    expect(retentionCutoff(now, '90d').toISOString()).toBe('2026-08-31T00:00:00.000Z');
  });

  const partition = (year: number, month: number): EventPartition => ({
    name: `events_${year}_${String(month).padStart(2, '0')}`,
    from: new Date(Date.UTC(year, month - 1, 1)),
    to: new Date(Date.UTC(year, month, 1)),
    rows: 1,
    estimated: true,
  });

  it('drops a partition only once all of it is past the cutoff, and never the current month', () => {
    const now = new Date('2026-11-29T05:00:00Z');
    const all = [partition(2023, 11), partition(2025, 9), partition(2025, 10), partition(2025, 11), partition(2026, 11), partition(2026, 12)];
    // Cutoff 2025-10-29: October 2025 is the boundary month and stays.
    expect(partitionsBefore(all, monthsBefore(now, 13), now).map((p) => p.name)).toEqual(['events_2023_11', 'events_2025_09']);
    // On the first of a month at midnight, the month before is wholly past.
    expect(partitionsBefore(all, new Date('2025-11-01T00:00:00Z'), now).map((p) => p.name)).toEqual(['events_2023_11', 'events_2025_09', 'events_2025_10']);
    // A cutoff in the future (a mistake) still spares this month and later ones.
    expect(partitionsBefore(all, new Date('2030-01-01T00:00:00Z'), now).map((p) => p.name)).toEqual(['events_2023_11', 'events_2025_09', 'events_2025_10', 'events_2025_11']);
  });

  it('takes per-purpose retention from purposes.yaml: events no longer than the purposes linking them, decisions by the longest cited', () => {
    const now = new Date('2026-11-29T05:00:00Z');
    const catalog = shippedCatalog();
    const shipped = cutoffsAt(retentionPolicy(loadConfig({}), catalog), now);
    expect(shipped.events.cutoff).toEqual(monthsBefore(now, 13));
    expect(shipped.profiles.cutoff).toEqual(monthsBefore(now, 24));
    expect(shipped.decisions.fallback).toMatchObject({ name: 'email_marketing', retention: '2y' });
    expect(shipped.decisions.cutoff).toEqual(monthsBefore(now, 13));
    expect(shipped.segmentStates.cutoff).toEqual(monthsBefore(now, 13)); // profiling allows build_segments
    expect(shipped.events.rule).toContain('RETENTION_EVENTS_MONTHS=13; purposes linking events to profiles: analytics 13mo');
    // A longer events setting does not outlast the purpose that links events to people.
    expect(cutoffsAt(retentionPolicy(loadConfig({ RETENTION_EVENTS_MONTHS: '36' }), catalog), now).events.cutoff).toEqual(monthsBefore(now, 13));
    // A shorter one wins.
    expect(cutoffsAt(retentionPolicy(loadConfig({ RETENTION_EVENTS_MONTHS: '6' }), catalog), now).events.cutoff).toEqual(monthsBefore(now, 6));
  });
});

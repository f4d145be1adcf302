import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';

/**
 * The retention variables (GDPR Art. 5(1)(e) storage limitation): per-data-category defaults and
 * when the retention job runs. See README "Retention".
 */

/** A whole number of months: at least one, at most a century (a larger number is a typo, not a policy). */
export const retentionMonths = z.coerce
  .number({ error: 'expected a whole number of months from 1 to 1200' })
  .int('expected a whole number of months from 1 to 1200')
  .min(1, 'expected a whole number of months from 1 to 1200')
  .max(1200, 'expected a whole number of months from 1 to 1200');

export const retentionBatchSize = z.coerce
  .number({ error: 'expected a whole number of profiles from 1 to 100000' })
  .int('expected a whole number of profiles from 1 to 100000')
  .min(1, 'expected a whole number of profiles from 1 to 100000')
  .max(100_000, 'expected a whole number of profiles from 1 to 100000');

const CRON_RULE =
  'expected a cron expression of 5 fields (minute hour day-of-month month day-of-week), e.g. "30 3 * * *", one of @hourly, @daily, @weekly, @monthly, or off';

/**
 * Five fields or a named schedule, read in UTC; `off` turns the schedule off (run
 * `consentflow retention run` from another scheduler then). cron-parser also takes a sixth field of
 * seconds and fills in missing fields, which would hide a mistake: both are refused.
 */
export const retentionCron = z
  .string()
  .transform((text) => text.trim())
  .superRefine((text, ctx) => {
    if (text === 'off') return;
    const fields = text.split(/\s+/).length;
    const named = text.startsWith('@');
    let valid = named ? ['@hourly', '@daily', '@weekly', '@monthly', '@yearly', '@annually', '@midnight'].includes(text) : fields === 5;
    if (valid) {
      try {
        CronExpressionParser.parse(text, { tz: 'UTC' });
      } catch {
        valid = false;
      }
    }
    if (!valid) ctx.addIssue({ code: 'custom', message: CRON_RULE });
  })
  // null, not undefined: a default would take the place of an undefined result.
  .transform((text) => (text === 'off' ? null : text));

import type { RetentionEntry } from '../../schemas/processing-records';
import type { Capability } from '../../schemas/purposes-file';
import type { Config } from '../config';
import type { PurposeCatalog, PurposeDefinition } from '../consent/purposes';
import { KEPT } from '../privacy/retention/plan';
import { EXPIRED_CONFIRMATION_DAYS } from '../privacy/retention/policy';
import { JOB_CATALOG } from '../queues/catalog';

/**
 * Art. 30(1)(f): the time limits for erasure of each category of data, as retention applies them
 * (engine/privacy/retention: README "Retention"), with where each period comes from.
 */

const UNITS: Readonly<Record<string, [string, string]>> = { d: ['day', 'days'], w: ['week', 'weeks'], mo: ['month', 'months'], y: ['year', 'years'] };

/** `13mo` → `13 months`, `1y` → `1 year`; anything else as written. */
export function retentionText(retention: string): string {
  const match = /^(\d+)(d|w|mo|y)$/.exec(retention);
  const unit = match?.[2] === undefined ? undefined : UNITS[match[2]];
  if (!match || !unit) return retention;
  return `${match[1]} ${match[1] === '1' ? unit[0] : unit[1]}`;
}

/** The longest retention among purposes (by days), or undefined for none. */
function longest(purposes: readonly PurposeDefinition[]): PurposeDefinition | undefined {
  return purposes.reduce<PurposeDefinition | undefined>((a, p) => (a === undefined || p.retentionDays > a.retentionDays ? p : a), undefined);
}

/** How long failed jobs stay in Redis, in days, with the queues that keep them so long (the job catalog). */
function failedJobDays(): string | undefined {
  const byDays = new Map<number, string[]>();
  for (const [queue, definition] of Object.entries(JOB_CATALOG)) {
    const keep = definition.removeOnFail;
    const seconds = typeof keep === 'object' ? keep.age : undefined;
    if (seconds === undefined) continue;
    const days = Math.ceil(seconds / 86_400);
    byDays.set(days, [...(byDays.get(days) ?? []), queue]);
  }
  if (byDays.size === 0) return undefined;
  return [...byDays]
    .sort(([a], [b]) => a - b)
    .map(([days, queues]) => `${days} days (${queues.join(', ')})`)
    .join('; ');
}

const describe = (purposes: readonly PurposeDefinition[]) => purposes.map((p) => `${p.name} ${p.retention}`).join(', ');

function byCapability(catalog: PurposeCatalog, capability: Capability): { purposes: readonly PurposeDefinition[]; longest: PurposeDefinition | undefined } {
  const purposes = catalog.providing(capability);
  return { purposes, longest: longest(purposes) };
}

export function retentionEntries(config: Config, catalog: PurposeCatalog): RetentionEntry[] {
  const r = config.privacy.retention;
  const e = config.privacy.erasure;
  const out: RetentionEntry[] = catalog.all().map((p) => ({
    data: `data kept for the purpose ${p.name}`,
    period: p.retention,
    source: `rules/purposes.yaml (${retentionText(p.retention)})`,
  }));

  const linking = byCapability(catalog, 'link_events_to_profile');
  out.push({
    data: 'raw events (app.events)',
    period: `${linking.longest ? `the shorter of ${r.eventsMonths} months and ${linking.longest.retention}` : `${r.eventsMonths} months`}, in whole monthly partitions (up to a month more)`,
    source: `RETENTION_EVENTS_MONTHS=${r.eventsMonths}${linking.purposes.length ? `; purposes linking events to profiles: ${describe(linking.purposes)}` : ''}`,
  });
  const all = longest(catalog.all());
  out.push({
    data: 'decisions of the rules (app.decisions)',
    period: 'the longest retention of the purposes each decision cites',
    source: `rules/purposes.yaml (${describe(catalog.all())}); citing none of them: ${all?.retention ?? 'the longest'}`,
  });
  const segmenting = byCapability(catalog, 'build_segments');
  out.push({
    data: 'past segment memberships (app.segment_state)',
    period: (segmenting.longest ?? all)?.retention ?? 'the longest purpose retention',
    source: segmenting.purposes.length ? `purposes allowing build_segments: ${describe(segmenting.purposes)}` : 'no purpose allows build_segments: the longest retention',
  });
  out.push({
    data: 'inactive profiles (not seen, in no active journey)',
    period: `${r.inactiveProfileMonths} months without being seen, then erased with a receipt`,
    source: `RETENTION_INACTIVE_PROFILE_MONTHS=${r.inactiveProfileMonths}; at most RETENTION_BATCH_SIZE=${r.batchSize} a run`,
  });
  out.push({
    data: 'double opt-in requests never confirmed',
    period: `${EXPIRED_CONFIRMATION_DAYS} days after they expired`,
    source: 'fixed: they never became consent',
  });
  out.push({
    data: 'erasure requests',
    period: `carried out within ${e.deadlineDays} days, else counted as overdue`,
    source: `ERASURE_DEADLINE_DAYS=${e.deadlineDays} (GDPR Art. 12(3): one month at most)`,
  });
  out.push({
    data: 'tombstones of erased identifiers (keyed hashes)',
    period: `${e.tombstoneDays} days`,
    source: `ERASURE_TOMBSTONE_DAYS=${e.tombstoneDays}`,
  });
  const failedDays = failedJobDays();
  if (failedDays !== undefined) {
    out.push({
      data: 'failed jobs in Redis (sealed where they may carry personal data), for the dead-letter view',
      period: failedDays,
      source: 'fixed (the job catalog: engine/queues/catalog.ts)',
    });
  }
  for (const kept of KEPT) out.push({ data: kept.data, period: 'kept', source: kept.rule });
  out.push({
    data: 'when retention runs',
    period: r.cron === undefined ? 'not scheduled (RETENTION_CRON=off): run `consentflow retention run` from a scheduler' : `daily job at cron "${r.cron}" (UTC)`,
    source: 'RETENTION_CRON',
  });
  return out;
}

import {
  describePurposes,
  EXPIRED_CONFIRMATION_DAYS,
  longest,
  monthsBefore,
  type PurposeCutoff,
  purposeCutoffs,
  type RetentionPolicy,
} from './policy';

/**
 * The policy at one moment: for each kind of data, the instant before which it goes, and the rule
 * that says so in words (shown by `consentflow retention plan` and logged). Pure.
 */

export interface Rule {
  readonly cutoff: Date;
  readonly rule: string;
}

export interface Cutoffs {
  readonly now: Date;
  /** Whole monthly partitions of app.events ending at or before this go. */
  readonly events: Rule;
  /** A decision goes once older than the longest retention of the purposes it cites. */
  readonly decisions: Rule & {
    readonly purposes: readonly PurposeCutoff[];
    /** For a decision citing no purpose of purposes.yaml (a refusal, a renamed purpose): the longest of all. */
    readonly fallback: PurposeCutoff;
  };
  readonly confirmations: Rule;
  readonly segmentStates: Rule;
  readonly profiles: Rule;
}

const day = (d: Date) => d.toISOString().slice(0, 10);

export function cutoffsAt(policy: RetentionPolicy, now: Date): Cutoffs {
  const purposes = purposeCutoffs(policy, now);
  const all = longest(purposes);
  if (!all) throw new Error('purposes.yaml declares no purpose'); // the schema requires one
  const later = (a: Date, b: Date) => (a > b ? a : b);

  // Events are a person's only under a purpose allowing link_events_to_profile: kept no longer than
  // the longest of those, and never longer than RETENTION_EVENTS_MONTHS.
  const linking = purposes.filter((p) => p.allows.includes('link_events_to_profile'));
  const byMonths = monthsBefore(now, policy.eventsMonths);
  const linkingLongest = longest(linking);
  const eventsCutoff = linkingLongest ? later(byMonths, linkingLongest.cutoff) : byMonths;
  const eventsRule =
    `whole months ending on or before ${day(eventsCutoff)} (RETENTION_EVENTS_MONTHS=${policy.eventsMonths}` +
    (linking.length ? `; purposes linking events to profiles: ${describePurposes(linking)}` : '') +
    '); a month partly after that stays until all of it is past; the current month never goes';

  // Segments are the data of build_segments: a "not a member" row records a past membership.
  const segmenting = purposes.filter((p) => p.allows.includes('build_segments'));
  const segmentsBy = longest(segmenting) ?? all;

  const confirmationsCutoff = new Date(now.getTime() - EXPIRED_CONFIRMATION_DAYS * 86_400_000);
  const profilesCutoff = monthsBefore(now, policy.inactiveProfileMonths);
  const latest = purposes.reduce((a, p) => later(a, p.cutoff), all.cutoff);

  return {
    now,
    events: { cutoff: eventsCutoff, rule: eventsRule },
    decisions: {
      // The shortest retention: no decision younger than this goes, whatever it cites.
      cutoff: latest,
      purposes,
      fallback: all,
      rule: `older than the longest retention of the purposes they cite (${describePurposes(purposes)}); citing none of them: ${all.retention}`,
    },
    confirmations: {
      cutoff: confirmationsCutoff,
      rule: `never confirmed: ${EXPIRED_CONFIRMATION_DAYS} days after they expired (they never became consent)`,
    },
    segmentStates: {
      cutoff: segmentsBy.cutoff,
      rule: `rows saying "not a member", with no re-check due, unchanged since before ${day(segmentsBy.cutoff)} (${segmenting.length ? `purposes allowing build_segments: ${describePurposes(segmenting)}` : `no purpose allows build_segments; the longest retention, ${all.retention}`})`,
    },
    profiles: {
      cutoff: profilesCutoff,
      rule: `profiles not seen since before ${day(profilesCutoff)} (RETENTION_INACTIVE_PROFILE_MONTHS=${policy.inactiveProfileMonths}) and in no active journey: erased as by an erasure request, with a receipt`,
    },
  };
}

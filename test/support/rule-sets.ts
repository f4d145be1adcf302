import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ConsentState, PurposeState } from '../../engine/consent/gate';
import { loadPurposeCatalog, type PurposeCatalog } from '../../engine/consent/purposes';
import type { ConsentDecisionKind } from '../../engine/db/types';
import { loadPropertiesPolicy } from '../../engine/privacy/properties-policy';
import type { ProfileSnapshot, SnapshotEvent } from '../../engine/rules/conditions';
import type { RuleSet } from '../../engine/rules/rule-set';
import { loadRulesFile } from '../../engine/rules-files/load-rules-file';
import { DEFAULT_PROPERTIES_FILE } from '../../engine/privacy/properties-policy';
import { PropertiesFile } from '../../schemas/properties-file';
import { CampaignFile } from '../../schemas/rules/campaign-file';
import { SegmentFile } from '../../schemas/rules/segment-file';
import { TemplateSet } from '../../engine/email/templates';

/**
 * Rule sets built from plain objects, parsed by the same zod schemas as the files (so defaults
 * apply and a typo fails the test), with the shipped purposes and properties.
 */

const SHIPPED = path.resolve(__dirname, '../../rules');

export function shippedPurposes(): PurposeCatalog {
  return loadPurposeCatalog(path.join(SHIPPED, 'purposes.yaml'));
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export interface RuleSetInput {
  readonly segments?: readonly unknown[];
  readonly campaigns?: readonly unknown[];
  /** Template names; default: every template a campaign sends. */
  readonly templates?: readonly string[];
}

let shipped: TemplateSet | undefined;
function shippedTemplates(): TemplateSet {
  if (!shipped) {
    const loaded = TemplateSet.load(SHIPPED, new Set(['plan', 'company', 'industry', 'language', 'country', 'createdAt', 'timezone', 'reengaged']));
    if (!loaded.ok) throw new Error(loaded.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`).join('\n'));
    shipped = loaded.templates;
  }
  return shipped;
}

export function buildRuleSet(input: RuleSetInput): RuleSet {
  const segments = new Map(
    (input.segments ?? []).map((raw) => {
      const file = SegmentFile.parse(raw);
      return [file.id, { file, path: `segments/${file.id}.yaml`, hash: sha256(JSON.stringify(raw)) }] as const;
    }),
  );
  const campaigns = new Map(
    (input.campaigns ?? []).map((raw) => {
      const file = CampaignFile.parse(raw);
      return [file.id, { file, path: `campaigns/${file.id}.yaml`, hash: sha256(JSON.stringify(raw)) }] as const;
    }),
  );
  const sent = JSON.stringify(input.campaigns ?? []).match(/"template":"[^"]+"/g) ?? [];
  const templateNames = input.templates ?? [...new Set(sent.map((s) => s.slice(12, -1)))];
  const properties = loadRulesFile(path.join(SHIPPED, 'properties.yaml'), PropertiesFile, DEFAULT_PROPERTIES_FILE);
  const pii = new Set(['email', 'phone', ...properties.traits.pii]);
  const hashes = [...segments.values(), ...campaigns.values()].map((f) => `${f.path}\0${f.hash}`).sort();
  return Object.freeze({
    dir: SHIPPED,
    purposes: shippedPurposes(),
    properties: loadPropertiesPolicy(path.join(SHIPPED, 'properties.yaml')),
    traitNames: new Set(properties.traits.allow.filter((t) => !pii.has(t))),
    segments,
    campaigns,
    templates: new Map(templateNames.map((t) => [t, `templates/${t}.html`])),
    // The shipped templates: the simulator and the evaluator never render them.
    emails: shippedTemplates(),
    version: sha256(hashes.join('\n')),
  });
}

/** `{email_marketing: 'granted', profiling: 'withdrawn'}` → a ConsentState recorded at `at`. */
export function consentOf(decisions: Readonly<Record<string, ConsentDecisionKind>>, at = new Date('2026-01-01T00:00:00Z')): ConsentState {
  return new Map<string, PurposeState>(Object.entries(decisions).map(([purpose, decision]) => [purpose, { decision, occurredAt: at, method: 'banner' }]));
}

export const ALL_CONSENT = { email_marketing: 'granted', profiling: 'granted', analytics: 'granted' } as const;

export function snapshotOf(partial: Partial<ProfileSnapshot> = {}): ProfileSnapshot {
  return {
    profileId: 'p1',
    traits: {},
    consent: consentOf(ALL_CONSENT),
    segments: new Set(),
    events: [],
    lastSeenAt: null,
    ...partial,
  };
}

export function trackEvent(name: string, at: string | Date, properties: Record<string, unknown> = {}): SnapshotEvent {
  return { type: 'track', name, properties, occurredAt: new Date(at) };
}

/** One JSON line per event, as `rules simulate --events` reads them. */
export function jsonl(events: readonly object[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n');
}

import type { Capability, LegalBasis } from '../../schemas/purposes-file';
import {
  PROCESSING_RECORDS_FORMAT,
  PROCESSING_RECORDS_FORMAT_VERSION,
  type ProcessingRecords,
  type RecordsCampaign,
  type RecordsPurpose,
  type RecordsSegment,
} from '../../schemas/processing-records';
import type { PropertiesFile } from '../../schemas/properties-file';
import type { Config } from '../config';
import type { PurposeCatalog } from '../consent/purposes';
import { type CompiledRuleSet, walkSteps } from '../rules/compile';
import { dataSubjectCategories, personalDataCategories } from './records-data';
import { recipientsOf, transfersOf } from './records-recipients';
import { retentionEntries, retentionText } from './records-retention';
import { securityMeasures } from './records-security';

/**
 * The records of processing activities (GDPR Art. 30(1)) from what the engine actually runs: the
 * purposes catalog, the compiled campaigns and segments, the properties file and the configuration.
 * Pure: the caller gathers the inputs (records-input.ts), and the same inputs give the same records.
 * Art. 30(4) asks the controller to make them available to the supervisory authority on request;
 * `consentflow report processing` and `GET /admin/v1/processing-records` print them.
 */

export interface ProcessingRecordsInput {
  readonly config: Config;
  readonly purposes: PurposeCatalog;
  readonly compiled: CompiledRuleSet;
  /** rules/properties.yaml as parsed (or its built-in default). */
  readonly properties: PropertiesFile;
  readonly now: Date;
}

/** What each capability lets the engine do (the words of rules/purposes.yaml). */
export const CAPABILITY_MEANING: Readonly<Record<Capability, string>> = {
  send_marketing_email: 'send newsletters and campaign emails',
  build_segments: 'put the person into segments (audiences)',
  behavioural_triggers: 'send messages started by what the person does, e.g. an abandoned cart',
  link_events_to_profile: 'keep website and app events on the person\'s profile instead of anonymously',
};

export const LEGAL_BASIS_ARTICLE: Readonly<Record<LegalBasis, string>> = {
  consent: 'GDPR Art. 6(1)(a)',
  legitimate_interest: 'GDPR Art. 6(1)(f)',
};

const CONTROLLER =
  'not known to the engine: add the name and contact details of the controller, of its representative and of the data protection officer (GDPR Art. 30(1)(a))';

function campaignsOf(compiled: CompiledRuleSet): RecordsCampaign[] {
  return [...compiled.campaigns.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((c) => {
      let sends = false;
      walkSteps(c.file.steps, (step) => {
        if ('send' in step) sends = true;
      });
      return {
        id: c.id,
        name: c.file.name,
        file: c.path,
        purposes: [...c.file.purposes],
        channels: sends ? ['email' as const] : [],
        trigger: c.triggerKind,
        behavioural: c.behavioural,
      };
    });
}

function segmentsOf(compiled: CompiledRuleSet, purposes: PurposeCatalog): RecordsSegment[] {
  const building = purposes.providing('build_segments').map((p) => p.name);
  return [...compiled.segmentById.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((s) => ({
      id: s.id,
      name: compiled.ruleSet.segments.get(s.id)?.file.name ?? s.id,
      file: s.path,
      profiling: s.profiling,
      purposes: s.profiling ? building : [],
    }));
}

function purposesOf(catalog: PurposeCatalog, campaigns: readonly RecordsCampaign[], segments: readonly RecordsSegment[]): RecordsPurpose[] {
  return catalog.all().map((p) => ({
    name: p.name,
    description: { ...p.description },
    legalBasis: p.legalBasis,
    legalBasisArticle: LEGAL_BASIS_ARTICLE[p.legalBasis],
    doubleOptIn: p.doubleOptIn,
    retention: p.retention,
    retentionText: retentionText(p.retention),
    allows: [...p.allows].map((capability) => ({ capability, meaning: CAPABILITY_MEANING[capability] })),
    campaigns: campaigns.filter((c) => c.purposes.includes(p.name)).map((c) => c.id),
    segments: segments.filter((s) => s.purposes.includes(p.name)).map((s) => s.id),
  }));
}

export function buildProcessingRecords(input: ProcessingRecordsInput): ProcessingRecords {
  const { config, purposes, compiled, properties } = input;
  const campaigns = campaignsOf(compiled);
  const segments = segmentsOf(compiled, purposes);
  return {
    format: PROCESSING_RECORDS_FORMAT,
    formatVersion: PROCESSING_RECORDS_FORMAT_VERSION,
    generatedAt: input.now.toISOString(),
    rulesVersion: compiled.version,
    controller: CONTROLLER,
    purposes: purposesOf(purposes, campaigns, segments),
    campaigns,
    segments,
    dataSubjects: dataSubjectCategories(purposes),
    personalData: personalDataCategories(properties, purposes, config),
    recipients: recipientsOf(config),
    transfers: transfersOf(),
    retention: retentionEntries(config, purposes),
    security: securityMeasures(config),
  };
}

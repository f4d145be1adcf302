import { ALWAYS_PII_TRAITS, PropertiesFile } from '../../schemas/properties-file';
import { deepFreeze, loadRulesFile } from '../rules-files/load-rules-file';
import { scrubText, scrubUrl } from './scrub-text';

/**
 * Applies `rules/properties.yaml` to each event before storage: unlisted properties and traits are
 * dropped, kept strings are scrubbed of personal data, and personal traits are split off for the
 * encrypted vault (GDPR Art. 5(1)(c) data minimisation, Art. 25 data protection by default).
 */

export type EventKind = 'track' | 'page' | 'screen' | 'identify' | 'group' | 'alias';

/** Used when the file does not exist; rules/properties.yaml ships with the same content. */
export const DEFAULT_PROPERTIES_FILE: PropertiesFile = deepFreeze({
  default: { allow: [] },
  events: {
    'Order Completed': { allow: ['order_id', 'total', 'currency'] },
    'Product Added': { allow: ['product_id', 'price', 'currency'] },
  },
  pages: { allow: ['path', 'title', 'referrer', 'url', 'search', 'name', 'category'] },
  traits: {
    allow: ['plan', 'company', 'industry', 'language', 'country', 'createdAt', 'timezone', 'reengaged'],
    pii: ['email', 'name', 'firstName', 'lastName', 'phone', 'address', 'birthday'],
  },
});

// Deeper values are dropped rather than stored unscrubbed; real event properties are shallow.
const MAX_DEPTH = 5;
// `search` is a query string (`?q=…&tel=…`): scrubbed parameter by parameter like a URL.
const URL_KEYS = new Set(['url', 'referrer', 'path', 'href', 'search']);
const LOOKS_LIKE_URL = /^(?:[a-z][a-z\d+.-]*:\/\/|\/)\S*$/i;
const DROP = Symbol('drop');

function scrubValue(value: unknown, key: string, depth: number): unknown {
  if (typeof value === 'string') return URL_KEYS.has(key) || LOOKS_LIKE_URL.test(value) ? scrubUrl(value) : scrubText(value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : DROP;
  if (typeof value === 'boolean' || value === null) return value;
  if (depth >= MAX_DEPTH || typeof value !== 'object') return DROP;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, key, depth + 1)).filter((item) => item !== DROP);
  const entries: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(value)) {
    const scrubbed = scrubValue(v, k, depth + 1);
    // Nested keys are the sender's free text too (`{"jan@example.com": 1}`).
    if (scrubbed !== DROP) entries.push([scrubText(k), scrubbed]);
  }
  // fromEntries defines own properties, so a `__proto__` key stays data instead of a prototype.
  return Object.fromEntries(entries);
}

function pick(source: Record<string, unknown> | undefined, names: ReadonlySet<string>): Record<string, unknown> {
  const entries: Array<[string, unknown]> = [];
  if (!source) return {};
  // Walks the configured names, not the sender's keys: the cost is bounded by the file.
  for (const name of names) {
    if (!Object.hasOwn(source, name)) continue;
    const value = scrubValue(source[name], name, 0);
    if (value !== DROP) entries.push([name, value]);
  }
  return Object.fromEntries(entries);
}

function asString(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

export class PropertiesPolicy {
  private readonly defaultAllow: ReadonlySet<string>;
  private readonly events: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly pages: ReadonlySet<string>;
  private readonly traitsAllow: ReadonlySet<string>;
  private readonly traitsPii: ReadonlySet<string>;

  constructor(file: PropertiesFile) {
    this.defaultAllow = new Set(file.default.allow);
    this.events = new Map(Object.entries(file.events).map(([name, entry]) => [name, new Set(entry.allow)]));
    this.pages = new Set(file.pages.allow);
    this.traitsPii = new Set([...ALWAYS_PII_TRAITS, ...file.traits.pii]);
    this.traitsAllow = new Set(file.traits.allow.filter((name) => !this.traitsPii.has(name)));
  }

  /**
   * Keeps the listed top-level properties, scrubbed. Identify, group and alias calls carry no
   * properties of their own in the Segment spec; anything sent there follows `default`.
   */
  minimizeProperties(
    kind: EventKind,
    eventName: string | undefined,
    properties: Record<string, unknown> | undefined,
  ): Record<string, unknown> {
    let allow = this.defaultAllow;
    if (kind === 'page' || kind === 'screen') allow = this.pages;
    else if (kind === 'track' && eventName !== undefined) allow = this.events.get(eventName) ?? this.defaultAllow;
    return pick(properties, allow);
  }

  /** Personal traits go to the vault as strings (encrypted there); listed others stay, scrubbed. */
  splitTraits(traits: Record<string, unknown> | undefined): { pii: Record<string, string>; traits: Record<string, unknown> } {
    const pii: Array<[string, string]> = [];
    if (traits) {
      for (const name of this.traitsPii) {
        const value = Object.hasOwn(traits, name) ? asString(traits[name]) : undefined;
        if (value !== undefined) pii.push([name, value]);
      }
    }
    return { pii: Object.fromEntries(pii), traits: pick(traits, this.traitsAllow) };
  }
}

/**
 * Reads and validates the file (YAML, or JSON, which YAML also reads). A missing file means the
 * built-in default; a present but invalid one is an error, never a silent fallback.
 */
export function loadPropertiesPolicy(filePath: string): PropertiesPolicy {
  return new PropertiesPolicy(loadRulesFile(filePath, PropertiesFile, DEFAULT_PROPERTIES_FILE));
}

import { createHash } from 'node:crypto';
import { type Capability, type LegalBasis, PurposesFile } from '../../schemas/purposes-file';
import { deepFreeze, loadRulesFile } from '../rules-files/load-rules-file';

/**
 * The purposes and consent notices of `rules/purposes.yaml`, indexed for the engine: which purposes
 * allow an action (GDPR Art. 5(1)(b) purpose limitation), which notice text a consent was given to
 * (Art. 7(1): the controller must be able to demonstrate consent), how long data is kept (Art.
 * 5(1)(e)).
 */

export interface PurposeDefinition {
  readonly name: string;
  /** By language code; always has `en`. */
  readonly description: Readonly<Record<string, string>>;
  readonly legalBasis: LegalBasis;
  readonly allows: ReadonlySet<Capability>;
  /** As written in the file, e.g. `13mo`. */
  readonly retention: string;
  /** The retention in days, counting a week as 7, a month as 30 and a year as 365 days. */
  readonly retentionDays: number;
  readonly tcfPurposes: readonly number[];
  readonly segmentCategories: readonly string[];
  /** Granted only by a confirmed double opt-in or on the person's preference page. */
  readonly doubleOptIn: boolean;
}

export interface NoticeDefinition {
  readonly id: string;
  readonly version: number;
  readonly text: string;
  readonly purposes: readonly string[];
  /** SHA-256 of the text (UTF-8), stored with each consent to prove which wording was shown. */
  readonly hash: Buffer;
}

/** Used when the file does not exist; rules/purposes.yaml ships with the same content. */
export const DEFAULT_PURPOSES_FILE: PurposesFile = deepFreeze({
  purposes: {
    email_marketing: {
      description: {
        en: 'Sending you our newsletter and offers by email.',
        pl: 'Wysyłanie Ci naszego newslettera i ofert e-mailem.',
      },
      legal_basis: 'consent',
      allows: ['send_marketing_email'],
      retention: '2y',
      tcf_purposes: [],
      double_opt_in: true,
      segment_categories: ['Email', 'Marketing'],
    },
    profiling: {
      description: {
        en:
          'Grouping you with people of similar interests and sending you messages prompted by what you do on our website ' +
          'and in our app, so that what we show and send you matches your interests.',
        pl:
          'Przypisywanie Cię do grup osób o podobnych zainteresowaniach i wysyłanie Ci wiadomości w odpowiedzi na Twoje ' +
          'działania w naszym serwisie i aplikacji, tak aby to, co Ci pokazujemy i wysyłamy, odpowiadało Twoim zainteresowaniom.',
      },
      legal_basis: 'consent',
      allows: ['build_segments', 'behavioural_triggers'],
      retention: '13mo',
      tcf_purposes: [3, 4, 5, 6],
      double_opt_in: false,
      segment_categories: ['Personalization', 'Advertising'],
    },
    analytics: {
      description: {
        en:
          'Linking your visits to our website and app to your profile, to understand how you use our offer and to measure ' +
          'how well our campaigns work.',
        pl:
          'Łączenie Twoich wizyt w naszym serwisie i aplikacji z Twoim profilem, aby zrozumieć, jak korzystasz z naszej ' +
          'oferty, i mierzyć skuteczność naszych kampanii.',
      },
      legal_basis: 'consent',
      allows: ['link_events_to_profile'],
      retention: '13mo',
      tcf_purposes: [1, 7, 8, 9],
      double_opt_in: false,
      segment_categories: ['Analytics'],
    },
  },
  notices: [
    {
      id: 'newsletter_form',
      version: 1,
      text:
        'Yes, send me the newsletter with news and offers by email. I can unsubscribe at any time with the link at the ' +
        'bottom of every email. Details in our privacy policy.',
      purposes: ['email_marketing'],
    },
    {
      id: 'cookie_banner',
      version: 1,
      text:
        'We use cookies and similar technologies to measure how our website is used and to personalise the content and ' +
        'offers we show you. Choose "Accept all" to agree, or "Settings" to choose purpose by purpose. You can change your ' +
        'choice at any time in the cookie settings.',
      purposes: ['analytics', 'profiling'],
    },
    {
      id: 'cookie_banner',
      version: 2,
      text:
        'We would like to measure how our website is used and to personalise the content and offers we show you. Choose ' +
        '"Accept all" or "Reject all", or choose purpose by purpose below. You can change your choice at any time under ' +
        '"Privacy settings".',
      purposes: ['analytics', 'profiling'],
    },
    {
      id: 'cookie_banner.pl',
      version: 1,
      text:
        'Chcielibyśmy mierzyć, jak korzystasz z naszego serwisu, i dopasowywać treści oraz oferty, które Ci pokazujemy. ' +
        'Wybierz „Akceptuj wszystkie” albo „Odrzuć wszystkie” lub zdecyduj osobno dla każdego celu poniżej. Wybór możesz ' +
        'zmienić w każdej chwili w „Ustawieniach prywatności”.',
      purposes: ['analytics', 'profiling'],
    },
    {
      id: 'account_settings',
      version: 1,
      text:
        'Choose how we may use your data: newsletter and offers by email; personalised content and messages based on your ' +
        'activity; linking your visits to your profile for analytics. You can change these settings at any time.',
      purposes: ['email_marketing', 'profiling', 'analytics'],
    },
  ],
});

const DAYS_PER_UNIT: Readonly<Record<string, number>> = { d: 1, w: 7, mo: 30, y: 365 };

function retentionDays(retention: string): number {
  const match = /^(\d+)(d|w|mo|y)$/.exec(retention);
  const days = match?.[2] === undefined ? undefined : DAYS_PER_UNIT[match[2]];
  // The schema admits nothing else; a catalog built from an unparsed object must not guess.
  if (!match || days === undefined) throw new Error(`invalid retention "${retention}"`);
  return Number(match[1]) * days;
}

export class PurposeCatalog {
  /** In file order. */
  readonly names: readonly string[];
  private readonly purposes: ReadonlyMap<string, PurposeDefinition>;
  private readonly list: readonly PurposeDefinition[];
  private readonly byCapability: ReadonlyMap<Capability, readonly PurposeDefinition[]>;
  private readonly notices: ReadonlyMap<string, ReadonlyMap<number, NoticeDefinition>>;
  private readonly byCategory: ReadonlyMap<string, string>;

  constructor(file: PurposesFile) {
    const purposes = new Map<string, PurposeDefinition>();
    const byCapability = new Map<Capability, PurposeDefinition[]>();
    const byCategory = new Map<string, string>();
    for (const [name, entry] of Object.entries(file.purposes)) {
      const definition: PurposeDefinition = Object.freeze({
        name,
        description: Object.freeze(typeof entry.description === 'string' ? { en: entry.description } : { ...entry.description }),
        legalBasis: entry.legal_basis,
        allows: new Set(entry.allows),
        retention: entry.retention,
        retentionDays: retentionDays(entry.retention),
        tcfPurposes: Object.freeze([...entry.tcf_purposes]),
        segmentCategories: Object.freeze([...entry.segment_categories]),
        doubleOptIn: entry.double_opt_in,
      });
      purposes.set(name, definition);
      for (const capability of definition.allows) {
        const list = byCapability.get(capability) ?? [];
        list.push(definition);
        byCapability.set(capability, list);
      }
      if (!byCategory.has(name.toLowerCase())) byCategory.set(name.toLowerCase(), name);
    }
    // A purpose's own name wins over another's category; the schema rejects such overlaps anyway.
    for (const definition of purposes.values()) {
      for (const category of definition.segmentCategories) {
        if (!byCategory.has(category.toLowerCase())) byCategory.set(category.toLowerCase(), definition.name);
      }
    }

    const notices = new Map<string, Map<number, NoticeDefinition>>();
    for (const entry of file.notices) {
      const versions = notices.get(entry.id) ?? new Map<number, NoticeDefinition>();
      versions.set(
        entry.version,
        Object.freeze({
          id: entry.id,
          version: entry.version,
          text: entry.text,
          purposes: Object.freeze([...entry.purposes]),
          hash: createHash('sha256').update(entry.text, 'utf8').digest(),
        }),
      );
      notices.set(entry.id, versions);
    }

    this.names = Object.freeze([...purposes.keys()]);
    this.purposes = purposes;
    this.list = Object.freeze([...purposes.values()]);
    this.byCapability = new Map([...byCapability].map(([capability, list]) => [capability, Object.freeze(list)]));
    this.notices = notices;
    this.byCategory = byCategory;
  }

  get(name: string): PurposeDefinition | undefined {
    return this.purposes.get(name);
  }

  all(): readonly PurposeDefinition[] {
    return this.list;
  }

  /** The purposes under which the engine may do `capability`, in file order. */
  providing(capability: Capability): readonly PurposeDefinition[] {
    return this.byCapability.get(capability) ?? [];
  }

  notice(id: string, version: number): NoticeDefinition | undefined {
    return this.notices.get(id)?.get(version);
  }

  hasNotice(id: string): boolean {
    return this.notices.has(id);
  }

  /** Ascending; empty for an unknown notice. */
  noticeVersions(id: string): number[] {
    return [...(this.notices.get(id)?.keys() ?? [])].sort((a, b) => a - b);
  }

  /** A Segment consent category (case-insensitive) to a purpose name: the purpose's own name or one listed in its segment_categories. */
  purposeForCategory(category: string): string | undefined {
    return this.byCategory.get(category.toLowerCase());
  }
}

/** Reads `rules/purposes.yaml` (or JSON); a missing file means the built-in default. */
export function loadPurposeCatalog(filePath: string): PurposeCatalog {
  return new PurposeCatalog(loadRulesFile(filePath, PurposesFile, DEFAULT_PURPOSES_FILE));
}

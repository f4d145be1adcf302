import type { DataSubjectCategory, PersonalDataCategory } from '../../schemas/processing-records';
import { ALWAYS_PII_TRAITS, type PropertiesFile } from '../../schemas/properties-file';
import type { Config } from '../config';
import type { PurposeCatalog } from '../consent/purposes';

/**
 * Art. 30(1)(c): the categories of data subjects and of personal data, from what the engine can
 * hold: the identifiers it resolves people by, the traits and properties rules/properties.yaml
 * keeps (and which of them are identifying, so vault-only), and what the engine itself records.
 */

const names = (purposes: PurposeCatalog, capability: Parameters<PurposeCatalog['providing']>[0]) =>
  purposes.providing(capability).map((p) => p.name);

const list = (items: readonly string[]) => (items.length ? items.join(', ') : 'none');

export function dataSubjectCategories(purposes: PurposeCatalog): DataSubjectCategory[] {
  const out: DataSubjectCategory[] = [
    {
      category: 'website and app visitors',
      description:
        'people whose browser or device sends events through a tracking source (pixel, SDK), known by an anonymous id (cookie or device id); ' +
        `their events are tied to a profile only under ${list(names(purposes, 'link_events_to_profile'))}, otherwise only counted anonymously`,
    },
    {
      category: 'identified users and customers',
      description: 'people a website, app or server identifies by a user id or an email address (identify calls, sign-up and consent forms)',
    },
  ];
  const mailing = names(purposes, 'send_marketing_email');
  if (mailing.length) {
    out.push({
      category: 'email recipients',
      description: `people sent marketing email (newsletters, campaigns) under ${list(mailing)}, and double opt-in confirmation emails`,
    });
  }
  out.push({
    category: 'people exercising their rights',
    description: 'people who withdraw consent, object, ask for a copy of their data or for its erasure (the request and its receipt, which names nobody)',
  });
  return out;
}

function eventFields(properties: PropertiesFile): string[] {
  const fields = Object.entries(properties.events).map(([event, entry]) => `${event}: ${list(entry.allow)}`);
  fields.push(`page and screen views: ${list(properties.pages.allow)}`);
  fields.push(`other track events: ${properties.default.allow.length ? properties.default.allow.join(', ') : 'name and time only'}`);
  return fields;
}

export function personalDataCategories(properties: PropertiesFile, purposes: PurposeCatalog, config: Config): PersonalDataCategory[] {
  const pii = [...new Set([...ALWAYS_PII_TRAITS, ...properties.traits.pii])];
  const traits = properties.traits.allow.filter((name) => !pii.includes(name));
  const linking = list(names(purposes, 'link_events_to_profile'));
  const out: PersonalDataCategory[] = [
    {
      category: 'contact and identity data',
      description: 'personal traits (rules/properties.yaml traits.pii; email and phone always): used to send messages, erased on request',
      fields: pii,
      identifying: true,
      storage: 'vault only, encrypted with AES-256-GCM under the person\'s own data key',
    },
    {
      category: 'identifiers',
      description: 'what a person is recognised by: email address, phone, user id, anonymous id (cookie or device id)',
      fields: ['email', 'phone', 'userId', 'anonymousId'],
      identifying: true,
      storage: 'vault only, as keyed hashes (HMAC-SHA256 blind indexes); never in plaintext',
    },
    {
      category: 'profile traits',
      description: 'traits kept on the pseudonymous profile, usable in segments (rules/properties.yaml traits.allow), each with its source and time',
      fields: traits,
      identifying: false,
      storage: 'pseudonymous profile (random id), schema app',
    },
    {
      category: 'behaviour: website, app and email events',
      description: `events and the properties rules/properties.yaml keeps for them, stored as the person's under ${linking}, else only counted per day and name; email opens and clicks only under ${linking}`,
      fields: eventFields(properties),
      identifying: false,
      storage: 'pseudonymous events (schema app), text scrubbed of email addresses, phone, PESEL and card numbers',
    },
    {
      category: 'technical data',
      description: 'from each event\'s context, minimized: the full IP address and user agent are never stored',
      fields: ['network prefix (IPv4 /24, IPv6 /48)', 'browser, OS and device type', 'page URL, title and referrer (scrubbed)', 'campaign tags (utm)', 'locale', 'time zone'],
      identifying: false,
      storage: 'with the event (schema app)',
    },
    {
      category: 'consent records',
      description: 'every grant, withdrawal and objection: purpose, time, the notice shown (id, version, SHA-256 of its text), source, method, network prefix',
      fields: ['purpose', 'decision', 'time', 'notice', 'source', 'method', 'network prefix'],
      identifying: false,
      storage: 'append-only consent ledger (schema app)',
    },
    {
      category: 'marketing activity',
      description: 'segment memberships, campaign journeys, email sends (campaign, step, template, state; never the text) and the decisions of the rules with their reasons',
      fields: ['segments', 'journeys', 'sends', 'decisions'],
      identifying: false,
      storage: 'pseudonymous (schema app)',
    },
  ];
  out.push({
    category: 'after erasure',
    description:
      `keyed hashes of an erased person's identifiers drop late events for ${config.privacy.erasure.tombstoneDays} days (ERASURE_TOMBSTONE_DAYS)` +
      (config.privacy.erasure.suppress ? '; a keyed hash of the address stays on the suppression list (ERASURE_SUPPRESS=true) so it is not mailed again' : ''),
    fields: config.privacy.erasure.suppress ? ['tombstones (keyed hashes)', 'suppression hash of the email address'] : ['tombstones (keyed hashes)'],
    identifying: false,
    storage: 'vault (tombstones); schema app (suppression list)',
  });
  return out;
}

import type { ConsentChange, ConsentRequest, NoticeRef } from '../../schemas/consent';
import type { SegmentEvent } from '../../schemas/segment';
import { scrubText, scrubUrl } from '../privacy/scrub-text';
import { normalizeEmail } from '../vault/normalize';
import type { PurposeCatalog } from './purposes';
import { decodeTcfConsent } from './tcf';

/**
 * Turns what a website sends (a `POST /v1/consent` body, or a track event following one of the
 * consent conventions) into a ConsentChange checked against rules/purposes.yaml. Everything is
 * checked here, in the API, so a mistake is a clear 400 and nothing is written.
 */

export type ChangeCheck = { ok: true; change: ConsentChange | undefined } | { ok: false; message: string };

/** Track events that carry a consent choice (ours, and the one Segment's consent management emits). */
export const CONSENT_EVENT_NAMES: ReadonlySet<string> = new Set(['Consent Updated', 'Segment Consent Preference Updated']);
/** Track events that start a double opt-in newsletter subscription. */
export const NEWSLETTER_EVENT_NAMES: ReadonlySet<string> = new Set(['newsletter_subscribed', 'Newsletter Subscribed']);

const record = (value: unknown): Record<string, unknown> | undefined =>
  value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;

function checkPurposes(catalog: PurposeCatalog, field: string, names: readonly string[]): string | undefined {
  for (const [index, name] of names.entries()) {
    if (!catalog.get(name)) return `${field}.${index}: unknown purpose "${scrubText(name).slice(0, 100)}"; declared in rules/purposes.yaml: ${catalog.names.join(', ')}`;
  }
  return undefined;
}

function checkNotice(catalog: PurposeCatalog, field: string, notice: NoticeRef, grant: readonly string[]): ConsentChange['notice'] | string {
  const definition = catalog.notice(notice.id, notice.version);
  if (!definition) {
    const versions = catalog.noticeVersions(notice.id);
    return versions.length > 0
      ? `${field}: notice "${notice.id}" has no version ${notice.version}; declared versions: ${versions.join(', ')}`
      : `${field}: unknown notice "${scrubText(notice.id).slice(0, 100)}"; declare it under notices in rules/purposes.yaml`;
  }
  const uncovered = grant.filter((p) => !definition.purposes.includes(p));
  if (uncovered.length > 0) {
    return `${field}: notice "${notice.id}" version ${notice.version} does not describe ${uncovered.join(', ')} (it covers ${definition.purposes.join(', ')}); consent must be informed (GDPR Art. 4(11))`;
  }
  return { id: definition.id, version: definition.version, hash: definition.hash.toString('hex') };
}

interface ChangeParts {
  readonly grant: readonly string[];
  readonly withdraw: readonly string[];
  readonly notice: NoticeRef | undefined;
  readonly method: ConsentChange['method'];
  readonly sourceRef: string | undefined;
  /** Where the fields came from, for messages: '' (a request body) or 'properties.'. */
  readonly prefix: string;
}

function buildChange(catalog: PurposeCatalog, parts: ChangeParts): ChangeCheck {
  const bad = checkPurposes(catalog, `${parts.prefix}grant`, parts.grant) ?? checkPurposes(catalog, `${parts.prefix}withdraw`, parts.withdraw);
  if (bad) return { ok: false, message: bad };
  const needsConfirmation = parts.method === 'double_opt_in' ? undefined : parts.grant.find((p) => catalog.get(p)?.doubleOptIn);
  if (needsConfirmation) {
    return {
      ok: false,
      message: `${parts.prefix}grant: ${needsConfirmation} is granted only by double opt-in (rules/purposes.yaml): send method "double_opt_in" with the person's email, and they confirm from their mailbox`,
    };
  }
  let notice: ConsentChange['notice'];
  if (parts.notice) {
    const checked = checkNotice(catalog, `${parts.prefix}notice`, parts.notice, parts.grant);
    if (typeof checked === 'string') return { ok: false, message: checked };
    notice = checked;
  } else if (parts.grant.length > 0) {
    // GDPR Art. 7(1): the ledger must show what the person was told when they agreed.
    return { ok: false, message: `${parts.prefix}notice: expected {"id", "version"} of the notice shown when consent was given (declared under notices in rules/purposes.yaml)` };
  }
  return {
    ok: true,
    change: {
      grant: [...new Set(parts.grant)],
      withdraw: [...new Set(parts.withdraw)],
      ...(notice ? { notice } : {}),
      method: parts.method,
      sourceKind: parts.method === 'form' || parts.method === 'double_opt_in' ? 'form' : 'write_key',
      ...(parts.sourceRef ? { sourceRef: parts.sourceRef.slice(0, 500) } : {}),
    },
  };
}

function tcfChange(catalog: PurposeCatalog, field: string, tcString: string): ChangeCheck {
  const decoded = decodeTcfConsent(
    tcString,
    catalog.all().map((p) => ({ name: p.name, tcfPurposes: p.tcfPurposes })),
  );
  if (!decoded.ok) return { ok: false, message: `${field}: ${decoded.message}` };
  if (decoded.granted.length === 0 && decoded.withdrawn.length === 0) return { ok: true, change: undefined };
  return {
    ok: true,
    change: {
      grant: decoded.granted,
      withdraw: decoded.withdrawn,
      method: 'tcf',
      sourceKind: 'write_key',
      sourceRef: `IAB TCF v${decoded.version} string, CMP ${decoded.cmpId}, policy version ${decoded.policyVersion}, updated ${decoded.lastUpdated}`,
    },
  };
}

function sourceRefOf(form: string | undefined, url: string | undefined): string | undefined {
  if (form) return `form:${scrubText(form).slice(0, 200)}`;
  if (url) return scrubUrl(url).slice(0, 500);
  return undefined;
}

/** A `POST /v1/consent` body (already shape-checked by zod) against the purposes file. */
export function changeFromRequest(catalog: PurposeCatalog, body: ConsentRequest): ChangeCheck {
  if (body.tcString !== undefined) {
    if (body.grant.length > 0 || body.withdraw.length > 0) {
      return { ok: false, message: 'tcString: send either a tcString or grant/withdraw lists, not both' };
    }
    return tcfChange(catalog, 'tcString', body.tcString);
  }
  if (body.method === 'double_opt_in') {
    if (body.email === undefined) return { ok: false, message: 'email: a double opt-in needs the address to send the confirmation to' };
    if (body.grant.length === 0) return { ok: false, message: 'grant: a double opt-in needs the purposes to confirm' };
  }
  return buildChange(catalog, {
    grant: body.grant,
    withdraw: body.withdraw,
    notice: body.notice,
    method: body.method,
    sourceRef: sourceRefOf(body.source?.form, body.source?.url),
    prefix: '',
  });
}

function noticeOf(properties: Record<string, unknown>): NoticeRef | undefined | string {
  const notice = record(properties.notice);
  if (properties.notice === undefined) return undefined;
  if (!notice || typeof notice.id !== 'string' || typeof notice.version !== 'number' || !Number.isInteger(notice.version)) {
    return 'properties.notice: expected {"id": string, "version": integer}';
  }
  return { id: notice.id, version: notice.version };
}

function eventHasEmail(event: SegmentEvent): boolean {
  const traits = record(event.traits) ?? record(record(event.context)?.traits);
  // One deliverable address, or the event is refused: a list would make the engine a relay.
  return typeof traits?.email === 'string' && normalizeEmail(traits.email) !== undefined;
}

/**
 * The consent a track event carries, by convention (documented in docs/consent.md):
 * - `Consent Updated` (or Segment's `Segment Consent Preference Updated`): `properties.purposes`
 *   `{name: true|false}` and/or Segment's `context.consent.categoryPreferences`, or a TCF string in
 *   `context.consent.tcString`; `properties.notice` `{id, version}`; `properties.method` banner|form.
 * - `newsletter_subscribed`: a double opt-in for the purpose that allows marketing email, with
 *   `properties.notice` and the address in `traits.email` or `context.traits.email`.
 * Other events carry no consent (`change: undefined`).
 */
export function changeFromEvent(catalog: PurposeCatalog, event: SegmentEvent): ChangeCheck {
  if (event.type !== 'track') return { ok: true, change: undefined };
  const name = event.event;
  const properties = record(event.properties) ?? {};
  const context = record(event.context) ?? {};
  const page = record(context.page);
  const url = typeof page?.url === 'string' ? page.url : undefined;
  const form = typeof properties.form === 'string' ? properties.form : undefined;
  const notice = noticeOf(properties);
  if (typeof notice === 'string') return { ok: false, message: notice };

  if (NEWSLETTER_EVENT_NAMES.has(name)) {
    const purpose = catalog.providing('send_marketing_email')[0]?.name;
    if (!purpose) return { ok: false, message: `${name}: no purpose in rules/purposes.yaml allows send_marketing_email` };
    if (!eventHasEmail(event)) return { ok: false, message: `${name}: expected one valid subscriber address in traits.email or context.traits.email` };
    if (!notice) return { ok: false, message: `properties.notice: expected {"id", "version"} of the sign-up notice the person saw` };
    return buildChange(catalog, { grant: [purpose], withdraw: [], notice, method: 'double_opt_in', sourceRef: sourceRefOf(form, url), prefix: 'properties.' });
  }
  if (!CONSENT_EVENT_NAMES.has(name)) return { ok: true, change: undefined };

  const consent = record(context.consent);
  const tcString = typeof consent?.tcString === 'string' ? consent.tcString : typeof properties.tcString === 'string' ? properties.tcString : undefined;
  const grant: string[] = [];
  const withdraw: string[] = [];
  const purposes = record(properties.purposes);
  if (properties.purposes !== undefined && !purposes) return { ok: false, message: 'properties.purposes: expected an object {"purpose": true | false}' };
  for (const [purpose, value] of Object.entries(purposes ?? {})) {
    const label = `properties.purposes.${scrubText(purpose).slice(0, 100)}`;
    if (!catalog.get(purpose)) return { ok: false, message: `${label}: unknown purpose; declared in rules/purposes.yaml: ${catalog.names.join(', ')}` };
    if (typeof value !== 'boolean') return { ok: false, message: `${label}: expected true or false` };
    (value ? grant : withdraw).push(purpose);
  }
  // Segment's consent categories are the site's own names; those no purpose maps are not ours to record.
  for (const [category, value] of Object.entries(record(consent?.categoryPreferences) ?? {})) {
    const purpose = catalog.purposeForCategory(category);
    if (purpose === undefined || typeof value !== 'boolean' || grant.includes(purpose) || withdraw.includes(purpose)) continue;
    (value ? grant : withdraw).push(purpose);
  }
  if (grant.length === 0 && withdraw.length === 0) {
    if (tcString !== undefined) return tcfChange(catalog, 'context.consent.tcString', tcString);
    return { ok: false, message: `${name}: expected properties.purposes {"purpose": true | false}, context.consent.categoryPreferences or a TCF string` };
  }
  const method = properties.method === 'form' ? 'form' : 'banner';
  return buildChange(catalog, { grant, withdraw, notice, method, sourceRef: sourceRefOf(form, url), prefix: 'properties.' });
}

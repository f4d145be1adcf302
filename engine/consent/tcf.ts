import { Base64Url, TCString } from '@iabtechlabtcf/core';

/**
 * Reads an IAB TCF v2.2 consent string (a "TC string", IAB Tech Lab "Consent string and vendor list
 * formats v2") and maps its purpose consents onto our purposes, each of which lists the TCF purposes
 * it needs (`tcf_purposes` in rules/purposes.yaml).
 *
 * Only the core segment's purpose consents count (the `PurposesConsent` field). The
 * `PurposesLITransparency` bits (`purposeLegitimateInterests` in the library) say that the CMP
 * disclosed a legitimate interest and the user did not object: they are not consent (GDPR Art. 4(11),
 * Art. 6(1)(a) vs 6(1)(f)), so they never grant a purpose here. TCF Policy v4, which came with
 * TCF v2.2, already forbids legitimate interest for purposes 3–6, and purpose 1 (storage and access
 * on a device, ePrivacy Directive Art. 5(3)) was consent-only from the start.
 *
 * The string is untrusted input from a browser, so nothing here throws: every failure is returned
 * as `{ ok: false, message }` saying what is wrong and what is allowed.
 */

export interface TcfPurposeMapping {
  readonly name: string;
  /** TCF purposes 1–11 that must all be consented; empty means TCF does not speak for this purpose. */
  readonly tcfPurposes: readonly number[];
}

export type TcfDecoding =
  | {
      ok: true;
      /** Purposes whose TCF purposes are all consented, in mapping order. */
      granted: string[];
      /** Purposes for which at least one of their TCF purposes is not consented, in mapping order. */
      withdrawn: string[];
      cmpId: number;
      /**
       * `TcfPolicyVersion`: 4 or more since TCF v2.2 (TCF Policy v4). Not checked here: the spec
       * deems a string created after 30 September 2023 with a version below 4 invalid, and asks for
       * consent to be collected again when the latest GVL carries a newer version than the string
       * ("Managing conflicting string versions"); the caller decides.
       */
      policyVersion: number;
      /** The TC string format version: always 2 (TCF v2.0 to v2.3 all encode version 2). */
      version: number;
      /** ISO 8601; TCF v2.2 CMPs round it to the day. */
      lastUpdated: string;
    }
  | { ok: false; message: string };

/** Same limit as `tcString` in POST /v1/consent (schemas/consent.ts). */
export const MAX_TC_STRING_LENGTH = 4096;

/** TCF v2.2 defines purposes 1 to 11 (the PurposesConsent field has room for 24). */
const TCF_PURPOSE_COUNT = 11;

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const SEGMENTED_BASE64URL = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const NOT_BASE64URL_OR_DOT = /[^A-Za-z0-9_.-]/;

const TC_STRING_VERSION = 2;

// The first 3 bits of every segment after the core one give its type; the core segment starts with
// its 6-bit version instead, so its first 3 bits are 0 for any version below 8.
const SEGMENT_TYPE_BITS = 3;
const CORE = 0;
const SEGMENT_NAMES: Readonly<Record<number, string>> = { 1: 'disclosed vendors', 2: 'allowed vendors', 3: 'publisher purposes' };

// Core segment bits before the first vendor field (MaxVendorId of the vendor consents): Version 6,
// Created 36, LastUpdated 36, CmpId 12, CmpVersion 12, ConsentScreen 6, ConsentLanguage 12,
// VendorListVersion 12, TcfPolicyVersion 6, IsServiceSpecific 1, UseNonStandardTexts 1,
// SpecialFeatureOptIns 12, PurposesConsent 24, PurposesLITransparency 24, PurposeOneTreatment 1,
// PublisherCC 12.
const CORE_FIXED_BITS = 213;

/**
 * Vendor-id ranges are expanded one id at a time by the decoder, so a 4 KB string of ranges
 * 1–65535 takes seconds of CPU (publisher restrictions are the slowest). A real string lists a
 * vendor at most once per field, and vendor ids are 16-bit: 2^18 covers both vendor fields full
 * plus restrictions on every registered vendor, and decodes in tens of milliseconds.
 */
const MAX_RANGE_VENDOR_IDS = 2 ** 18;

export function decodeTcfConsent(tcString: string, purposes: readonly TcfPurposeMapping[]): TcfDecoding {
  try {
    return decode(tcString, purposes);
  } catch (err) {
    // Unreachable as far as we know; kept so that a library surprise is a rejection, not a 500.
    return fail(`the TC string could not be decoded (${err instanceof Error ? err.message : String(err)})`);
  }
}

function decode(tcString: string, purposes: readonly TcfPurposeMapping[]): TcfDecoding {
  const mappingProblem = checkMapping(purposes);
  if (mappingProblem) return fail(mappingProblem);

  const shapeProblem = checkShape(tcString);
  if (shapeProblem) return fail(shapeProblem);

  const segments = tcString.split('.');
  const segmentProblem = checkSegments(segments);
  if (segmentProblem) return fail(segmentProblem);

  let model: ReturnType<typeof TCString.decode>;
  try {
    model = TCString.decode(tcString);
  } catch (err) {
    // The library throws its DecodingError for short or inconsistent fields, and plain TypeErrors
    // for some malformed segments; neither message is meant for a person.
    const detail = err instanceof TypeError ? 'a malformed segment' : err instanceof Error ? err.message : String(err);
    return fail(`the TC string could not be decoded as an IAB TCF v2 string: ${detail}`);
  }

  const version = Number(model.version);
  if (version !== TC_STRING_VERSION) return fail(versionMessage(version));
  const lastUpdated = model.lastUpdated;
  if (!(lastUpdated instanceof Date) || Number.isNaN(lastUpdated.getTime())) {
    return fail('the TC string has no valid LastUpdated date');
  }

  const granted: string[] = [];
  const withdrawn: string[] = [];
  for (const purpose of purposes) {
    // No TCF purpose listed: the string says nothing about this purpose (e-mail marketing, say).
    if (purpose.tcfPurposes.length === 0) continue;
    const consented = purpose.tcfPurposes.every((id) => model.purposeConsents.has(id));
    (consented ? granted : withdrawn).push(purpose.name);
  }

  return {
    ok: true,
    granted,
    withdrawn,
    cmpId: Number(model.cmpId),
    policyVersion: Number(model.policyVersion),
    version,
    lastUpdated: lastUpdated.toISOString(),
  };
}

function fail(message: string): TcfDecoding {
  return { ok: false, message };
}

function checkMapping(purposes: readonly TcfPurposeMapping[]): string | undefined {
  for (const purpose of purposes) {
    for (const id of purpose.tcfPurposes) {
      if (!Number.isInteger(id) || id < 1 || id > TCF_PURPOSE_COUNT) {
        return `purpose "${purpose.name}" lists TCF purpose ${String(id)}; TCF v2.2 defines purposes 1 to ${TCF_PURPOSE_COUNT}`;
      }
    }
  }
  return undefined;
}

function checkShape(tcString: unknown): string | undefined {
  if (typeof tcString !== 'string') return 'expected the TC string as text';
  if (tcString.length === 0) return 'the TC string is empty; expected an IAB TCF v2.2 consent string';
  if (tcString.length > MAX_TC_STRING_LENGTH) {
    return `the TC string is ${tcString.length} characters long; at most ${MAX_TC_STRING_LENGTH} are allowed`;
  }
  if (SEGMENTED_BASE64URL.test(tcString)) return undefined;
  const bad = NOT_BASE64URL_OR_DOT.exec(tcString);
  const found = bad ? `${JSON.stringify(bad[0])} at position ${bad.index + 1}` : 'an empty segment';
  return `the TC string is not base64url: found ${found}; only A-Z, a-z, 0-9, "-" and "_" are allowed, in non-empty segments separated by "." (no "=" padding, no spaces)`;
}

function checkSegments(segments: readonly string[]): string | undefined {
  let rangeVendorIds = 0;
  for (const [index, segment] of segments.entries()) {
    // Every segment is non-empty and base64url here (checkShape).
    const head = BASE64URL_ALPHABET.indexOf(segment.charAt(0));
    const type = head >> (6 - SEGMENT_TYPE_BITS);
    if (index === 0) {
      if (type !== CORE) {
        return `the TC string starts with a ${SEGMENT_NAMES[type] ?? `type ${type}`} segment; it must start with the core segment`;
      }
      if (head !== TC_STRING_VERSION) return versionMessage(head);
    } else if (SEGMENT_NAMES[type] === undefined) {
      const what = type === CORE ? 'a second core segment' : `a segment of unknown type ${type}`;
      return `segment ${index + 1} of the TC string is ${what}; after the core segment only disclosed vendors (1), allowed vendors (2) and publisher purposes (3) may follow`;
    }
    rangeVendorIds += rangeExpansion(segment, type);
  }
  if (rangeVendorIds > MAX_RANGE_VENDOR_IDS) {
    return `the TC string's vendor ranges cover ${rangeVendorIds} vendor ids; at most ${MAX_RANGE_VENDOR_IDS} are accepted (a real string lists each vendor at most once per field)`;
  }
  return undefined;
}

function versionMessage(version: number): string {
  const note = version === 1 ? ' (TCF v1.1, invalid since 30 September 2020)' : '';
  return `the TC string is TCF version ${version}${note}; only version ${TC_STRING_VERSION} strings (TCF v2.2) are accepted`;
}

/**
 * How many vendor ids the segment's range entries stand for, counted without expanding them. Walks
 * the vendor fields as the spec lays them out (MaxVendorId 16, IsRangeEncoding 1, NumEntries 12,
 * then IsARange 1, StartOrOnlyVendorId 16, EndVendorId 16 per entry; a bit field is skipped) and the
 * core segment's publisher restrictions (NumPubRestrictions 12, then PurposeId 6, RestrictionType 2
 * and the same entries). Stops where the bits run out: the decoder reports that.
 */
function rangeExpansion(segment: string, type: number): number {
  const bits = Base64Url.decode(segment);
  let pos = type === CORE ? CORE_FIXED_BITS : SEGMENT_TYPE_BITS;
  let total = 0;
  const read = (length: number): number => {
    const field = bits.slice(pos, pos + length);
    pos += length;
    return field.length === length ? parseInt(field, 2) : NaN;
  };
  const rangeEntries = (): void => {
    const count = read(12);
    for (let i = 0; i < count && pos < bits.length; i++) {
      const isRange = read(1) === 1;
      const first = read(16);
      const last = isRange ? read(16) : first;
      if (last >= first) total += last - first + 1;
    }
  };
  const vendorField = (): void => {
    const maxId = read(16);
    if (read(1) === 1) rangeEntries();
    else pos += maxId;
  };

  if (type === CORE) {
    vendorField(); // vendor consents
    vendorField(); // vendor legitimate interests
    const restrictions = read(12);
    for (let i = 0; i < restrictions && pos < bits.length; i++) {
      pos += 6 + 2; // PurposeId, RestrictionType
      rangeEntries();
    }
  } else if (type === 1 || type === 2) {
    vendorField(); // disclosed or allowed vendors
  }
  return total;
}

import { isWellFormed } from '../../schemas/well-formed';
import { parseAddress } from '../email/address';
import type { PropertiesPolicy } from '../privacy/properties-policy';
import { normalizeId } from '../vault/normalize';

/**
 * One person entered by hand (`POST /admin/v1/subjects`) or read from an import file, checked
 * before anything is written: the identifiers, the address rule (engine/email/address.ts), and the
 * traits rules/properties.yaml keeps. The same rules as the tracking API, so a person added by hand
 * is stored exactly as one identified by a website would be.
 */

/** The identifier columns of an import and fields of the admin body; every other name is a trait. */
export const IDENTIFIER_FIELDS = ['email', 'userId'] as const;

/** A trait value longer than this is refused: profile traits are short (a plan, a country, a name). */
export const MAX_TRAIT_CHARS = 1000;

export interface PersonInput {
  readonly email?: string | undefined;
  readonly userId?: string | undefined;
  readonly traits: Readonly<Record<string, string | number | boolean>>;
}

/** A checked person: the address as the one rule gives it back, the id trimmed, the traits as given. */
export interface Person {
  readonly email?: string;
  readonly userId?: string;
  readonly traits: Readonly<Record<string, string | number | boolean>>;
}

export type PersonCheck = { readonly ok: true; readonly person: Person } | { readonly ok: false; readonly field: string; readonly message: string };

// C0 and C1 controls and DEL, as the tracking API refuses them (engine/ingest/validate.ts): line
// breaks and tabs in stored values become header and CSV injection downstream.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why a text value cannot be stored, or undefined. Never quotes the value: it is personal data. */
export function textProblem(value: string): string | undefined {
  if (CONTROL.test(value)) return 'control characters (line breaks, tabs, U+0000-U+001F, U+007F-U+009F) are not allowed';
  if (!isWellFormed(value)) return 'unpaired UTF-16 surrogates are not allowed';
  return undefined;
}

/** Whether rules/properties.yaml keeps a trait of this name (on the profile, or encrypted in the vault). */
export function isKnownTrait(policy: PropertiesPolicy, name: string): boolean {
  // The policy is asked with a probe: the same code decides what an identify call keeps.
  const probe = policy.splitTraits(Object.fromEntries([[name, 'x']]));
  return Object.hasOwn(probe.pii, name) || Object.hasOwn(probe.traits, name);
}

/** The trait names the policy keeps that a caller may name (for messages). */
export function describeKnownTraits(policy: PropertiesPolicy, candidates: readonly string[]): string {
  return candidates.filter((name) => isKnownTrait(policy, name)).join(', ');
}

export function checkPerson(policy: PropertiesPolicy, input: PersonInput): PersonCheck {
  let email: string | undefined;
  if (input.email !== undefined) {
    const problem = textProblem(input.email);
    if (problem) return { ok: false, field: 'email', message: problem };
    const parsed = parseAddress(input.email);
    if (!parsed.ok) return { ok: false, field: 'email', message: parsed.reason };
    email = parsed.address;
  }
  let userId: string | undefined;
  if (input.userId !== undefined) {
    const problem = textProblem(input.userId);
    if (problem) return { ok: false, field: 'userId', message: problem };
    userId = normalizeId(input.userId);
    if (userId === undefined) return { ok: false, field: 'userId', message: 'expected an id of 1 to 200 characters' };
  }
  if (email === undefined && userId === undefined) {
    return { ok: false, field: 'email', message: 'expected an email or a userId: who this person is' };
  }
  for (const [name, value] of Object.entries(input.traits)) {
    if ((IDENTIFIER_FIELDS as readonly string[]).includes(name)) {
      return { ok: false, field: `traits.${name}`, message: `give ${name} as its own field, not as a trait` };
    }
    if (!isKnownTrait(policy, name)) {
      return { ok: false, field: `traits.${name}`, message: 'not a trait rules/properties.yaml keeps (traits.allow or traits.pii): declare it there first' };
    }
    if (typeof value === 'number' && !Number.isFinite(value)) return { ok: false, field: `traits.${name}`, message: 'expected a finite number' };
    if (typeof value !== 'string') continue;
    const problem = textProblem(value);
    if (problem) return { ok: false, field: `traits.${name}`, message: problem };
    if (value.length > MAX_TRAIT_CHARS) return { ok: false, field: `traits.${name}`, message: `expected at most ${MAX_TRAIT_CHARS} characters` };
  }
  return { ok: true, person: { ...(email !== undefined ? { email } : {}), ...(userId !== undefined ? { userId } : {}), traits: input.traits } };
}

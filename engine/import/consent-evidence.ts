import { type ConsentChange, ConsentRequest, PURPOSE_NAME } from '../../schemas/consent';
import type { PurposeCatalog } from '../consent/purposes';
import { changeFromRequest } from '../consent/requests';
import { scrubText } from '../privacy/scrub-text';

/**
 * Consent that arrives with people entered by hand or imported: a grant, the notice the person was
 * shown (GDPR Art. 7(1): the controller must be able to show what was agreed to), and where the
 * evidence is kept. Checked against rules/purposes.yaml by the same code as `POST /v1/consent`
 * (engine/consent/requests.ts); recorded with method and source kind `admin` or `import`.
 */

export type EvidenceCheck = { readonly ok: true; readonly change: ConsentChange } | { readonly ok: false; readonly message: string };

export interface Evidence {
  readonly grant: readonly string[];
  readonly notice: { readonly id: string; readonly version: number };
}

/**
 * A purpose granted only by double opt-in cannot be granted by a list or a form typed in: the
 * person confirms from their own mailbox (rules/purposes.yaml `double_opt_in`), which is the proof.
 */
function doubleOptInRefusal(catalog: PurposeCatalog, field: string, grant: readonly string[]): string | undefined {
  const purpose = grant.find((p) => catalog.get(p)?.doubleOptIn);
  if (!purpose) return undefined;
  return (
    `${field}: ${purpose} is granted only by double opt-in (rules/purposes.yaml), so consent to it cannot be imported or typed in: ` +
    'the person confirms from their own mailbox (a sign-up form, or the preference page)'
  );
}

function check(catalog: PurposeCatalog, field: string, evidence: Evidence): EvidenceCheck {
  const refusal = doubleOptInRefusal(catalog, field, evidence.grant);
  if (refusal) return { ok: false, message: refusal };
  const request = ConsentRequest.safeParse({ userId: 'shape-check', grant: [...evidence.grant], notice: evidence.notice, method: 'api' });
  if (!request.success) return { ok: false, message: `${field}: ${request.error.issues[0]?.message ?? 'invalid'}` };
  const checked = changeFromRequest(catalog, request.data);
  if (!checked.ok) return { ok: false, message: `${field}: ${checked.message.replace(/^(grant|notice)(\.\d+)?: /, '')}` };
  if (!checked.change) return { ok: false, message: `${field}: expected at least one purpose` };
  return { ok: true, change: checked.change };
}

const SPEC = /^([^:@]+):([^:@]+)@([1-9][0-9]{0,8})$/;

/**
 * `--consent PURPOSE[,PURPOSE…]:NOTICE@VERSION` of `consentflow import`, e.g.
 * `analytics,profiling:cookie_banner@1`: the purposes every imported row grants, and the notice.
 */
export function importConsent(catalog: PurposeCatalog, spec: string): EvidenceCheck {
  const match = SPEC.exec(spec.trim());
  if (!match) return { ok: false, message: '--consent: expected PURPOSE:NOTICE@VERSION, e.g. analytics:cookie_banner@1 (several purposes: a,b:NOTICE@VERSION)' };
  const grant = (match[1] as string).split(',').map((p) => p.trim());
  const bad = grant.find((p) => !PURPOSE_NAME.test(p));
  if (bad !== undefined) return { ok: false, message: `--consent: ${JSON.stringify(scrubText(bad).slice(0, 60))} is not a purpose name; declared in rules/purposes.yaml: ${catalog.names.join(', ')}` };
  const checked = check(catalog, '--consent', { grant, notice: { id: (match[2] as string).trim(), version: Number(match[3]) } });
  if (!checked.ok) return checked;
  return { ok: true, change: { ...checked.change, method: 'import', sourceKind: 'import' } };
}

/** The consent of `POST /admin/v1/subjects`: the reference says where the signed form or recording is kept. */
export function adminConsent(catalog: PurposeCatalog, evidence: Evidence & { readonly reference: string }, keyId: string): EvidenceCheck {
  const checked = check(catalog, 'consent', evidence);
  if (!checked.ok) return checked;
  return { ok: true, change: { ...checked.change, method: 'admin', sourceKind: 'admin', sourceRef: `key ${keyId}: ${scrubText(evidence.reference)}`.slice(0, 500) } };
}

import { type ConsentState, decide, type PurposeState } from '../../engine/consent/gate';
import { PurposeCatalog } from '../../engine/consent/purposes';
import type { ConsentDecisionKind, ConsentMethod } from '../../engine/db/types';
import type { PurposesFile } from '../../schemas/purposes-file';
import { catalogLinkingByDefault, shippedCatalog } from '../support/rules';

/**
 * A small catalog, in this order:
 * - email_marketing (consent): send_marketing_email
 * - profiling (consent): build_segments, behavioural_triggers
 * - recommendations (legitimate interest): build_segments
 * Nothing allows link_events_to_profile.
 */
const FILE: PurposesFile = {
  purposes: {
    email_marketing: {
      description: 'Our newsletter.',
      legal_basis: 'consent',
      allows: ['send_marketing_email'],
      retention: '2y',
      tcf_purposes: [],
      segment_categories: [],
    double_opt_in: false,
    },
    profiling: {
      description: 'Messages based on what you do.',
      legal_basis: 'consent',
      allows: ['build_segments', 'behavioural_triggers'],
      retention: '13mo',
      tcf_purposes: [],
      segment_categories: [],
    double_opt_in: false,
    },
    recommendations: {
      description: 'Products like the ones you bought.',
      legal_basis: 'legitimate_interest',
      allows: ['build_segments'],
      retention: '1y',
      tcf_purposes: [],
      segment_categories: [],
    double_opt_in: false,
    },
  },
  notices: [],
};

const catalog = new PurposeCatalog(FILE);

const T1 = new Date('2026-03-01T10:15:00.000Z');
const T2 = new Date('2026-04-02T08:00:30.250Z');

function row(decision: ConsentDecisionKind, method: ConsentMethod, occurredAt: Date): PurposeState {
  return { decision, method, occurredAt };
}

function state(entries: Record<string, PurposeState> = {}): ConsentState {
  return new Map(Object.entries(entries));
}

const NONE = state();

describe('decide: one consent-based purpose', () => {
  it('refuses a purpose never asked for, as never_granted', () => {
    const d = decide(catalog, NONE, { purposes: ['email_marketing'] });
    expect(d.allowed).toBe(false);
    expect(d.purposes).toEqual(['email_marketing']);
    expect(d.missing).toEqual([{ purpose: 'email_marketing', reason: 'never_granted' }]);
    expect(d.reason).toBe('refused: email_marketing never granted');
  });

  it('refuses when only some other purpose is granted', () => {
    const d = decide(catalog, state({ profiling: row('granted', 'banner', T1) }), { purposes: ['email_marketing'] });
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([{ purpose: 'email_marketing', reason: 'never_granted' }]);
  });

  it('allows a granted purpose, naming the method and the date', () => {
    const d = decide(catalog, state({ email_marketing: row('granted', 'double_opt_in', T1) }), { purposes: ['email_marketing'] });
    expect(d.allowed).toBe(true);
    expect(d.purposes).toEqual(['email_marketing']);
    expect(d.missing).toEqual([]);
    expect(d.reason).toBe('allowed: email_marketing granted by double_opt_in on 2026-03-01T10:15:00.000Z');
  });

  it('refuses a withdrawn purpose as withdrawn, naming the method and the date', () => {
    const d = decide(catalog, state({ email_marketing: row('withdrawn', 'email_link', T2) }), { purposes: ['email_marketing'] });
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([{ purpose: 'email_marketing', reason: 'withdrawn' }]);
    expect(d.reason).toBe('refused: email_marketing withdrawn by email_link on 2026-04-02T08:00:30.250Z');
  });

  it('refuses an objected purpose as objected', () => {
    const d = decide(catalog, state({ email_marketing: row('objected', 'preference_page', T2) }), { purposes: ['email_marketing'] });
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([{ purpose: 'email_marketing', reason: 'objected' }]);
    expect(d.reason).toBe('refused: email_marketing objected by preference_page on 2026-04-02T08:00:30.250Z');
  });
});

describe('decide: one purpose on legitimate interest', () => {
  it('allows it when the person was never asked', () => {
    const d = decide(catalog, NONE, { purposes: ['recommendations'] });
    expect(d.allowed).toBe(true);
    expect(d.purposes).toEqual(['recommendations']);
    expect(d.missing).toEqual([]);
    expect(d.reason).toBe('allowed: recommendations on legitimate interest, not objected to');
  });

  it('allows it with the grant named when the person did agree', () => {
    const d = decide(catalog, state({ recommendations: row('granted', 'form', T1) }), { purposes: ['recommendations'] });
    expect(d.allowed).toBe(true);
    expect(d.reason).toBe('allowed: recommendations granted by form on 2026-03-01T10:15:00.000Z');
  });

  it('refuses it once the person objects', () => {
    const d = decide(catalog, state({ recommendations: row('objected', 'api', T2) }), { purposes: ['recommendations'] });
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([{ purpose: 'recommendations', reason: 'objected' }]);
    expect(d.reason).toBe('refused: recommendations objected by api on 2026-04-02T08:00:30.250Z');
  });

  it('refuses it once the person withdraws', () => {
    const d = decide(catalog, state({ recommendations: row('withdrawn', 'preference_page', T2) }), { purposes: ['recommendations'] });
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([{ purpose: 'recommendations', reason: 'withdrawn' }]);
    expect(d.reason).toBe('refused: recommendations withdrawn by preference_page on 2026-04-02T08:00:30.250Z');
  });

  it('follows the catalog: analytics links events by default only where it rests on legitimate interest', () => {
    const need = { capability: 'link_events_to_profile' } as const;
    const linkingByDefault = catalogLinkingByDefault();

    const linking = decide(linkingByDefault, NONE, need);
    expect(linking.allowed).toBe(true);
    expect(linking.purposes).toEqual(['analytics']);
    expect(linking.reason).toBe('allowed: analytics on legitimate interest, not objected to');

    const objected = decide(linkingByDefault, state({ analytics: row('objected', 'browser_signal', T1) }), need);
    expect(objected.allowed).toBe(false);
    expect(objected.missing).toEqual([{ purpose: 'analytics', reason: 'objected' }]);
    expect(objected.reason).toBe('refused: analytics objected by browser_signal on 2026-03-01T10:15:00.000Z');

    const shipped = decide(shippedCatalog(), NONE, need);
    expect(shipped.allowed).toBe(false);
    expect(shipped.missing).toEqual([{ purpose: 'analytics', reason: 'never_granted' }]);
    expect(shipped.reason).toBe('refused: analytics never granted');
  });
});

describe('decide: several purposes', () => {
  const need = { purposes: ['email_marketing', 'profiling', 'recommendations'] };

  it('allows when every one is allowed, naming each', () => {
    const d = decide(
      catalog,
      state({ email_marketing: row('granted', 'double_opt_in', T1), profiling: row('granted', 'banner', T2) }),
      need,
    );
    expect(d.allowed).toBe(true);
    expect(d.purposes).toEqual(['email_marketing', 'profiling', 'recommendations']);
    expect(d.missing).toEqual([]);
    expect(d.reason).toBe(
      'allowed: email_marketing granted by double_opt_in on 2026-03-01T10:15:00.000Z; ' +
        'profiling granted by banner on 2026-04-02T08:00:30.250Z; ' +
        'recommendations on legitimate interest, not objected to',
    );
  });

  it('refuses when one is missing, listing only that one', () => {
    const d = decide(catalog, state({ email_marketing: row('granted', 'double_opt_in', T1) }), need);
    expect(d.allowed).toBe(false);
    expect(d.purposes).toEqual(['email_marketing', 'profiling', 'recommendations']);
    expect(d.missing).toEqual([{ purpose: 'profiling', reason: 'never_granted' }]);
    expect(d.reason).toBe('refused: profiling never granted');
  });

  it('lists every missing purpose, in the order asked, each with its own reason', () => {
    const d = decide(
      catalog,
      state({ email_marketing: row('withdrawn', 'email_link', T1), recommendations: row('objected', 'admin', T2) }),
      need,
    );
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([
      { purpose: 'email_marketing', reason: 'withdrawn' },
      { purpose: 'profiling', reason: 'never_granted' },
      { purpose: 'recommendations', reason: 'objected' },
    ]);
    expect(d.reason).toBe(
      'refused: email_marketing withdrawn by email_link on 2026-03-01T10:15:00.000Z; ' +
        'profiling never granted; ' +
        'recommendations objected by admin on 2026-04-02T08:00:30.250Z',
    );
  });

  it('refuses an unknown purpose as unknown_purpose, alongside the others missing', () => {
    const d = decide(catalog, state({ email_marketing: row('granted', 'form', T1) }), {
      purposes: ['email_marketing', 'sms_marketing', 'profiling'],
    });
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([
      { purpose: 'sms_marketing', reason: 'unknown_purpose' },
      { purpose: 'profiling', reason: 'never_granted' },
    ]);
    expect(d.reason).toBe('refused: sms_marketing is not declared in rules/purposes.yaml; profiling never granted');
  });

  it('refuses an unknown purpose on its own, whatever the state says about it', () => {
    const d = decide(catalog, state({ sms_marketing: row('granted', 'form', T1) }), { purposes: ['sms_marketing'] });
    expect(d.allowed).toBe(false);
    expect(d.missing).toEqual([{ purpose: 'sms_marketing', reason: 'unknown_purpose' }]);
    expect(d.reason).toMatch(/^refused: sms_marketing is not declared in rules\/purposes\.yaml$/);
  });

  it('allows an empty list of purposes', () => {
    const d = decide(catalog, NONE, { purposes: [] });
    expect(d.allowed).toBe(true);
    expect(d.purposes).toEqual([]);
    expect(d.missing).toEqual([]);
    expect(d.reason).toBe('allowed: no purpose needed');
  });
});

describe('decide: a capability', () => {
  const need = { capability: 'build_segments' } as const;

  it('is allowed through a legitimate-interest purpose providing it when the consent one is not granted', () => {
    const d = decide(catalog, NONE, need);
    expect(d.allowed).toBe(true);
    expect(d.purposes).toEqual(['recommendations']);
    expect(d.missing).toEqual([]);
    expect(d.reason).toBe('allowed: recommendations on legitimate interest, not objected to');
  });

  it('is allowed through the first purpose (file order) that allows it', () => {
    const d = decide(catalog, state({ profiling: row('granted', 'banner', T1) }), need);
    expect(d.allowed).toBe(true);
    expect(d.purposes).toEqual(['profiling']);
    expect(d.reason).toBe('allowed: profiling granted by banner on 2026-03-01T10:15:00.000Z');
  });

  it('is allowed through any one purpose, even when the others are refused', () => {
    const d = decide(
      catalog,
      state({ profiling: row('granted', 'banner', T1), recommendations: row('objected', 'preference_page', T2) }),
      need,
    );
    expect(d.allowed).toBe(true);
    expect(d.purposes).toEqual(['profiling']);
  });

  it('is refused when no providing purpose allows it, listing every candidate', () => {
    const d = decide(catalog, state({ recommendations: row('objected', 'preference_page', T2) }), need);
    expect(d.allowed).toBe(false);
    expect(d.purposes).toEqual(['profiling', 'recommendations']);
    expect(d.missing).toEqual([
      { purpose: 'profiling', reason: 'never_granted' },
      { purpose: 'recommendations', reason: 'objected' },
    ]);
    expect(d.reason).toBe('refused: profiling never granted; recommendations objected by preference_page on 2026-04-02T08:00:30.250Z');
  });

  it('is refused with the single candidate listed when only one purpose provides it', () => {
    const d = decide(catalog, state({ profiling: row('withdrawn', 'email_link', T1) }), { capability: 'behavioural_triggers' });
    expect(d.allowed).toBe(false);
    expect(d.purposes).toEqual(['profiling']);
    expect(d.missing).toEqual([{ purpose: 'profiling', reason: 'withdrawn' }]);
    expect(d.reason).toMatch(/^refused: profiling withdrawn by email_link on 2026-03-01T10:15:00\.000Z$/);
  });

  it('is refused as no_purpose_allows when no purpose provides it', () => {
    const d = decide(catalog, NONE, { capability: 'link_events_to_profile' });
    expect(d.allowed).toBe(false);
    expect(d.purposes).toEqual([]);
    expect(d.missing).toEqual([{ purpose: 'link_events_to_profile', reason: 'no_purpose_allows' }]);
    expect(d.reason).toBe('refused: no purpose in rules/purposes.yaml allows link_events_to_profile');
  });
});

import { GVL, TCModel, TCString } from '@iabtechlabtcf/core';

// TCF v2.2 purpose names, as in the GVL v3 (vendor-list.json).
export const PURPOSE_NAMES = [
  'Store and/or access information on a device',
  'Use limited data to select advertising',
  'Create profiles for personalised advertising',
  'Use profiles to select personalised advertising',
  'Create profiles to personalise content',
  'Use profiles to select personalised content',
  'Measure advertising performance',
  'Measure content performance',
  'Understand audiences through statistics or combinations of data from different sources',
  'Develop and improve services',
  'Use limited data to select content',
];

/**
 * `TCString.encode` refuses to run without a GVL ("Unable to encode TCModel without a GVL"), also
 * for service-specific strings. A GVL built from a vendor-list object is ready at once and fetches
 * nothing (the library's own tests do the same with their vendor-list.json); this one declares the
 * eleven TCF v2.2 purposes and no vendors, which is all a purpose-only string needs.
 */
export function testGvl(): GVL {
  const purposes = Object.fromEntries(PURPOSE_NAMES.map((name, i) => [i + 1, { id: i + 1, name, description: name }]));
  return new GVL({
    gvlSpecificationVersion: 3,
    vendorListVersion: 100,
    tcfPolicyVersion: 5,
    lastUpdated: '2025-03-01T00:00:00Z',
    purposes,
    specialPurposes: {},
    features: {},
    specialFeatures: {},
    stacks: {},
    dataCategories: {},
    vendors: {},
  });
}

export const LAST_UPDATED = '2025-03-14T00:00:00.000Z';

/** A real TC string from the library's encoder, as a CMP would write it. */
export function tcString(consents: number[], options: { legitimateInterests?: number[]; version?: 1 | 2 } = {}): string {
  const model = new TCModel(testGvl());
  model.cmpId = 300;
  model.cmpVersion = 2;
  model.created = new Date(LAST_UPDATED);
  model.lastUpdated = new Date(LAST_UPDATED);
  model.purposeConsents.set(consents);
  model.purposeLegitimateInterests.set(options.legitimateInterests ?? []);
  return TCString.encode(model, { version: options.version ?? 2 });
}


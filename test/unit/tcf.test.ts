import { Base64Url, TCString } from '@iabtechlabtcf/core';
import { decodeTcfConsent, MAX_TC_STRING_LENGTH, TcfPurposeMapping } from '../../engine/consent/tcf';
import { LAST_UPDATED, tcString } from '../support/tcf';

/** The mapping rules/purposes.yaml ships (see docs/consent.md). */
const PURPOSES: readonly TcfPurposeMapping[] = [
  { name: 'analytics', tcfPurposes: [1, 7, 8, 9] },
  { name: 'profiling', tcfPurposes: [3, 4, 5, 6] },
  { name: 'email_marketing', tcfPurposes: [] },
];

const ALL_MAPPED = [1, 3, 4, 5, 6, 7, 8, 9];

// From the library's own test suite (iabtcf-es modules/core/test/ReportedIssues.test.ts): a TCF v2
// string written by CMP 31 in August 2020 (policy version 2, purposes 1-10 consented), and a
// TCF v1.1 string. Neither comes from our encoder.
const CMP_31_V2_STRING =
  'CO4VGswO4VGswAfZCBDEAzCsAP_AAH_AAAigGUNf_X9fb2vj-_599_t0eY1f9_63t-wzjheMs-8NyZ-X_J4Wv2MyvB34JqQKGRgkunLBAQdtHGncTQgBwIlViTLMY02MjzNKJrJEilsbe2dYGH9vn8XT_ZKZ70-_v__7v3___33_5Ayhr_6_r7e18f3_Pvv9ujzGr_v_W9v2GccLxln3huTPy_5PC1-xmV4O_BNSBQyMEl05YICDto407iaEAOBEqsSZZjGmxkeZpRNZIkUtjb2zrAw_t8_i6f7JTPen39___d-___--__ICgKAOAAcAA4AFAAjgB6AEYALcGACAW0AtoJAHAAOAAcACgARwA9ACMAFuFABALaAW0GgDgAHAAOABQAI4AegBGAC3DgAgFtALaEQBwADgAHAAoAEcAPQAjABbiQAQC2gFtCoA4ABwADgAUACOAHoARgAtxYAIBbQC2hkAcAA4ABwAKABHAD0AIwAW40AEAtoBbQ6AOAAcAA4AFAAjgB6AEYALceACAW0AtohAHAAOAAcACgARwA9ACMAFuRABALaAW0SgDgAHAAOABQAI4AegBGAC3JgAgFtALaKQBwADgAHAAoAEcAPQAjABblQAQC2gFtA';
const V1_STRING =
  'BOhwdphOxFC7tAHABBFRC--AAAAuhr_7__7-_9_-_f__9uj3Or_v_f__32ccL59v_h_7v-_7fi_20nV4u_1vft9yfk1-5ctDztp507iakivXmqdeb9v_nz3_5pxP78k89r7337Ew_v8_v-b7BCON_YxEiA';

describe('decodeTcfConsent', () => {
  it('grants every mapped purpose when all of its TCF purposes are consented', () => {
    expect(decodeTcfConsent(tcString(ALL_MAPPED), PURPOSES)).toEqual({
      ok: true,
      granted: ['analytics', 'profiling'],
      withdrawn: [],
      cmpId: 300,
      policyVersion: 5,
      version: 2,
      lastUpdated: LAST_UPDATED,
    });
  });

  it('withdraws a purpose when one of its TCF purposes lacks consent', () => {
    const withoutNine = ALL_MAPPED.filter((id) => id !== 9);
    expect(decodeTcfConsent(tcString(withoutNine), PURPOSES)).toMatchObject({ ok: true, granted: ['profiling'], withdrawn: ['analytics'] });
    const withoutOne = ALL_MAPPED.filter((id) => id !== 1);
    expect(decodeTcfConsent(tcString(withoutOne), PURPOSES)).toMatchObject({ ok: true, granted: ['profiling'], withdrawn: ['analytics'] });
  });

  it('withdraws every mapped purpose when nothing is consented', () => {
    expect(decodeTcfConsent(tcString([]), PURPOSES)).toMatchObject({ ok: true, granted: [], withdrawn: ['analytics', 'profiling'] });
  });

  it('does not count legitimate-interest transparency as consent', () => {
    const encoded = tcString([1], { legitimateInterests: [7, 8, 9] });
    // The bits are really in the string (TCF v2.2 lets purposes 7-9 use legitimate interest).
    const model = TCString.decode(encoded);
    expect([7, 8, 9].map((id) => model.purposeLegitimateInterests.has(id))).toEqual([true, true, true]);
    expect(decodeTcfConsent(encoded, PURPOSES)).toMatchObject({ ok: true, granted: [], withdrawn: ['analytics', 'profiling'] });
  });

  it('leaves a purpose without TCF purposes untouched, whatever the string says', () => {
    for (const consents of [ALL_MAPPED, [], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]) {
      const result = decodeTcfConsent(tcString(consents), PURPOSES);
      expect(result.ok).toBe(true);
      if (!result.ok) continue;
      expect([...result.granted, ...result.withdrawn]).not.toContain('email_marketing');
    }
  });

  it('keeps the order of the mapping and ignores unrelated TCF purposes', () => {
    const mapping = [
      { name: 'b', tcfPurposes: [2] },
      { name: 'a', tcfPurposes: [10, 11] },
      { name: 'c', tcfPurposes: [11] },
    ];
    expect(decodeTcfConsent(tcString([2, 11]), mapping)).toMatchObject({ ok: true, granted: ['b', 'c'], withdrawn: ['a'] });
  });

  it('decodes a string written by a real CMP', () => {
    expect(decodeTcfConsent(CMP_31_V2_STRING, PURPOSES)).toEqual({
      ok: true,
      granted: ['analytics', 'profiling'],
      withdrawn: [],
      cmpId: 31,
      // A TCF v2.0 string: reported, not judged (the caller compares with the GVL).
      policyVersion: 2,
      version: 2,
      lastUpdated: '2020-08-18T09:50:09.600Z',
    });
  });

  describe('rejects', () => {
    const rejects = (input: string, message: RegExp): void => {
      const result = decodeTcfConsent(input, PURPOSES);
      expect(result).toEqual({ ok: false, message: expect.stringMatching(message) });
    };

    it('an empty string', () => {
      rejects('', /^the TC string is empty; expected an IAB TCF v2\.2 consent string$/);
    });

    it('a string that is not base64url, naming the character', () => {
      rejects('not a tc string', /not base64url: found " " at position 4; only A-Z, a-z, 0-9, "-" and "_" are allowed/);
      rejects('COtybn4PA==', /found "=" at position 10/);
      rejects(`${tcString(ALL_MAPPED)}\n`, /found "\\n" at position/);
    });

    it('empty segments', () => {
      rejects('.COtybn4PA', /found an empty segment/);
      rejects(`${tcString(ALL_MAPPED).split('.')[0]}..IAAA`, /found an empty segment/);
    });

    it('a string longer than 4096 characters, before decoding it', () => {
      rejects(`C${'A'.repeat(MAX_TC_STRING_LENGTH)}`, /^the TC string is 4097 characters long; at most 4096 are allowed$/);
    });

    it('a TCF v1.1 string, naming the version', () => {
      const v1 = tcString(ALL_MAPPED, { version: 1 });
      expect(TCString.decode(v1).version).toBe(1);
      for (const input of [v1, V1_STRING]) {
        rejects(input, /^the TC string is TCF version 1 \(TCF v1\.1, invalid since 30 September 2020\); only version 2 strings \(TCF v2\.2\) are accepted$/);
      }
    });

    it('other versions, naming the version', () => {
      // The core segment starts with its 6-bit version: "D" is 3, "A" is 0.
      rejects(`D${tcString(ALL_MAPPED).slice(1)}`, /TCF version 3; only version 2 strings/);
      rejects('AAAAAAAA', /TCF version 0; only version 2 strings/);
    });

    it('base64url that does not decode', () => {
      const core = tcString(ALL_MAPPED).split('.')[0] ?? '';
      rejects(core.slice(0, 20), /^the TC string could not be decoded as an IAB TCF v2 string: /);
      rejects('CAAAAAAAAAA', /could not be decoded as an IAB TCF v2 string/);
      rejects(`${core}.ZZZZ`, /could not be decoded as an IAB TCF v2 string/);
    });

    it('a string that does not start with the core segment', () => {
      rejects('IAAA', /starts with a disclosed vendors segment; it must start with the core segment/);
      rejects('gAAA', /starts with a type 4 segment/);
    });

    it('a second core segment or an unknown segment type', () => {
      const core = tcString(ALL_MAPPED).split('.')[0] ?? '';
      rejects(`${core}.${core}`, /segment 2 of the TC string is a second core segment/);
      rejects(`${core}.gAAA`, /segment 2 of the TC string is a segment of unknown type 4/);
    });

    it('a mapping to a purpose TCF v2.2 does not define', () => {
      const result = decodeTcfConsent(tcString(ALL_MAPPED), [{ name: 'analytics', tcfPurposes: [1, 12] }]);
      expect(result).toEqual({ ok: false, message: 'purpose "analytics" lists TCF purpose 12; TCF v2.2 defines purposes 1 to 11' });
    });
  });

  describe('vendor ranges', () => {
    // Built bit by bit after the core segment table of "Consent string and vendor list formats v2",
    // because the encoder only writes vendors its GVL lists.
    const bits = (value: number, length: number): string => value.toString(2).padStart(length, '0');
    const range = (first: number, last: number): string => `1${bits(first, 16)}${bits(last, 16)}`;
    const coreWithRanges = (vendorRanges: number, restrictionRanges: number): string => {
      const deciseconds = bits(Date.parse(LAST_UPDATED) / 100, 36);
      const en = bits(4, 6) + bits(13, 6);
      let core = bits(2, 6) + deciseconds + deciseconds + bits(300, 12) + bits(2, 12) + bits(1, 6) + en + bits(100, 12) + bits(5, 6);
      core += '1' + '0' + bits(0, 12); // service-specific, standard texts, no special features
      core += '1'.repeat(11) + '0'.repeat(13) + '0'.repeat(24) + '0' + en; // purposes 1-11 consented
      core += bits(65535, 16) + '1' + bits(vendorRanges, 12) + range(1, 65535).repeat(vendorRanges); // vendor consents
      core += bits(0, 16) + '0'; // no vendor legitimate interests
      core += bits(restrictionRanges > 0 ? 1 : 0, 12);
      if (restrictionRanges > 0) core += bits(2, 6) + bits(0, 2) + bits(restrictionRanges, 12) + range(1, 65535).repeat(restrictionRanges);
      return Base64Url.encode(core);
    };

    it('decodes a string whose ranges stay within the vendor id space', () => {
      const model = TCString.decode(coreWithRanges(1, 2));
      expect(model.vendorConsents.size).toBe(65535);
      expect(decodeTcfConsent(coreWithRanges(1, 2), PURPOSES)).toMatchObject({ ok: true, granted: ['analytics', 'profiling'], cmpId: 300 });
    });

    it('refuses, without decoding, ranges that would take seconds to expand', () => {
      // 120 restriction ranges of 1-65535: 700 characters, about a second of decoding.
      const input = coreWithRanges(1, 120);
      expect(input.length).toBeLessThan(MAX_TC_STRING_LENGTH);
      const started = performance.now();
      const result = decodeTcfConsent(input, PURPOSES);
      expect(performance.now() - started).toBeLessThan(200);
      expect(result).toEqual({
        ok: false,
        message: `the TC string's vendor ranges cover ${121 * 65535} vendor ids; at most 262144 are accepted (a real string lists each vendor at most once per field)`,
      });
    });
  });

  it('never throws, whatever it is given', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    const valid = tcString(ALL_MAPPED);
    let seed = 42;
    const random = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 16) % n;
    };
    const inputs: unknown[] = [undefined, null, 42, {}, ['C']];
    for (let i = 0; i < 300; i++) {
      inputs.push(Array.from({ length: 1 + random(80) }, () => alphabet[random(alphabet.length)]).join(''));
      // A valid string with one character changed or cut short.
      const at = random(valid.length);
      inputs.push(valid.slice(0, at) + (alphabet[random(alphabet.length)] ?? '') + valid.slice(at + 1));
      inputs.push(valid.slice(0, at));
    }
    for (const input of inputs) {
      const result = decodeTcfConsent(input as string, PURPOSES);
      expect(typeof result.ok).toBe('boolean');
      if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
    }
  });
});

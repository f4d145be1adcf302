import fc from 'fast-check';
import { EVENT_TYPES, type EventType } from '../../schemas/segment';
import { checkEvent } from '../../engine/ingest/validate';
import { checkFormEvent, type FormEvent } from '../../engine/ingest/validate-form';

/**
 * The pixel form's fast check must answer as the general one does: same verdict, same code, and the
 * same event when accepted (messageId aside when the engine makes one up: it is random).
 */
describe('checkFormEvent agrees with checkEvent', () => {
  const receivedAt = new Date('2026-11-29T12:00:00Z');
  // Values that sit on every rule's edge: ids and names of 0, 1, 200 and 201 characters, padding
  // that trimming removes, control characters, lone surrogates, timestamps good, bad, too old or ahead.
  const edgy = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom('', ' ', '  x  ', '\u00a0id\u00a0', 'a'.repeat(200), 'a'.repeat(201), ` ${'b'.repeat(200)} `, 'x\ny', 'x\u0085y', 'tab\there', '\ud800', 'ok\udfffok', 'ż\u00f3\u0142w', '{"json":1}'),
    fc.constantFrom('2026-11-29T10:00:00Z', '2026-11-29', '2026-11-29T10:00', '2026-11-29T10:00:00.123+01:00', '2026-11-29T10:00:00', '1999-01-01T00:00:00Z', '2030-01-01T00:00:00Z', '2026-13-45T99:00:00Z', 'yesterday'),
    fc.string({ unit: 'grapheme', maxLength: 8 }),
    fc.string({ unit: 'binary', maxLength: 8 }),
  );
  const form: fc.Arbitrary<FormEvent> = fc.record(
    {
      properties: fc.dictionary(fc.oneof(fc.constantFrom('url', 'referrer', 'title', 'k'.repeat(201), 'x\u0007'), fc.string({ maxLength: 6 })), edgy, { maxKeys: 4 }),
      anonymousId: edgy,
      userId: edgy,
      event: edgy,
      messageId: edgy,
      timestamp: edgy,
    },
    { requiredKeys: ['properties'] },
  );

  it('on arbitrary forms of every type', () => {
    fc.assert(
      fc.property(form, fc.constantFrom(...EVENT_TYPES), (raw: FormEvent, type: EventType) => {
        const general = checkEvent(structuredClone(raw), type, receivedAt, undefined);
        const fast = checkFormEvent(structuredClone(raw), type, receivedAt);
        expect(fast.ok).toBe(general.ok);
        if (!fast.ok && !general.ok) expect(fast.code).toBe(general.code);
        if (fast.ok && general.ok) {
          expect(fast.occurredAt).toEqual(general.occurredAt);
          const withoutMadeUpId = (c: typeof fast) => (raw.messageId === undefined ? { ...c.event, messageId: 'made up' } : c.event);
          expect(withoutMadeUpId(fast)).toEqual(withoutMadeUpId(general));
          if (raw.messageId === undefined) expect(fast.messageId).toMatch(/^cf-[0-9a-f-]{36}$/);
          else expect(fast.messageId).toBe(general.messageId);
        }
      }),
      { numRuns: 5_000 },
    );
  });

  it('on forms larger than an event may be', () => {
    const big: FormEvent = { anonymousId: 'v', properties: { title: 'x'.repeat(33 * 1024) } };
    expect(checkFormEvent(big, 'page', receivedAt)).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
    expect(checkEvent(big, 'page', receivedAt, undefined)).toMatchObject({ ok: false, code: 'PAYLOAD_TOO_LARGE' });
  });

  it('on forms around the size limit, where the size is measured rather than bounded', () => {
    // Sizes from well under to just over 32 KB, in characters that JSON writes as 1, 2, 3 or 6 bytes.
    const units = fc.constantFrom('a', '\u00f3', '\u20ac', '"', '\\', '\u0001', '\ud83d\ude00');
    const sized = fc.tuple(units, fc.integer({ min: 1_000, max: 33_000 }), fc.integer({ min: 0, max: 40 })).map(([unit, bytes, extra]) => {
      const text = unit.repeat(Math.max(1, Math.floor(bytes / Math.max(1, Buffer.byteLength(JSON.stringify(unit)) - 2))));
      return { anonymousId: 'v', properties: { title: text, ...Object.fromEntries(Array.from({ length: extra }, (_, i) => [`k${i}`, 'x'])) } } as FormEvent;
    });
    fc.assert(
      fc.property(sized, (raw) => {
        const general = checkEvent(structuredClone(raw), 'page', receivedAt, undefined);
        const fast = checkFormEvent(structuredClone(raw), 'page', receivedAt);
        expect(fast.ok).toBe(general.ok);
        if (!fast.ok && !general.ok) expect(fast.code).toBe(general.code);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts the ordinary page view, as the general check does', () => {
    const raw: FormEvent = { anonymousId: ' visitor-1 ', properties: { url: 'https://shop.example/pricing', title: 'Pricing' }, messageId: 'm-1' };
    const fast = checkFormEvent(raw, 'page', receivedAt);
    expect(fast).toEqual({ ok: true, messageId: 'm-1', occurredAt: receivedAt, event: { type: 'page', messageId: 'm-1', anonymousId: 'visitor-1', properties: raw.properties } });
    expect(fast).toEqual(checkEvent(raw, 'page', receivedAt, undefined));
  });
});

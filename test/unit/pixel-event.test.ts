import fc from 'fast-check';
import Fastify from 'fastify';
import { decodePixels, encodePixels, pixelEvent, type RawPixel, SEGMENT_FORM, SIMPLE_FORM } from '../../engine/ingest/pixel-event';

const SOURCE = '00000000-0000-4000-8000-000000000001';
const at = Date.parse('2026-11-29T12:00:00Z');

describe('pixels handed to the intake thread', () => {
  it('survive the one-string encoding unchanged, whatever their query and address hold (no line break)', () => {
    const noBreak = fc.string({ unit: 'binary', maxLength: 40 }).map((s) => s.replace(/\n/g, ''));
    const pixel = fc.tuple(
      fc.constantFrom(SIMPLE_FORM, SEGMENT_FORM),
      fc.uuid(),
      noBreak,
      fc.constantFrom('page', 'track', 'identify'),
      fc.option(noBreak, { nil: undefined }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 2 ** 45 }),
    );
    fc.assert(
      fc.property(fc.array(pixel, { maxLength: 20 }), (items) => {
        // An empty address and no address are the same to the engine (truncateIp answers undefined).
        const expected = items.map(([f, s, q, t, ip, g, ms]) => [f, s, q, t, ip === '' ? undefined : ip, g, ms]);
        expect(decodePixels(encodePixels(items as RawPixel[]))).toEqual(expected);
      }),
    );
  });

  it('read the query as fastify does: + is a space, %-escapes decoded, the first of repeated keys', async () => {
    const app = Fastify();
    let seen: unknown;
    app.get('/t.gif', (request) => {
      seen = request.query;
      return '';
    });
    const query = 'aid=v+1&aid=v2&url=https%3A%2F%2Fshop.example%2F%3Fq%3Da%2Bb&title=Caf%C3%A9&p.size=XL';
    await app.inject(`/t.gif?${query}`);
    await app.close();
    const outcome = pixelEvent([SIMPLE_FORM, SOURCE, query, 'page', '203.0.113.9', 0, at]);
    if (!outcome.ok) throw new Error(outcome.reason);
    const fastifyQuery = seen as Record<string, string | string[]>;
    expect(outcome.event.event).toMatchObject({
      anonymousId: (fastifyQuery.aid as string[])[0],
      properties: { url: fastifyQuery.url, title: fastifyQuery.title, size: fastifyQuery['p.size'] },
    });
    expect(outcome.event.event).toMatchObject({ anonymousId: 'v 1', properties: { url: 'https://shop.example/?q=a+b', title: 'Café', size: 'XL' } });
    expect(outcome.event.ipPrefix).toBe('203.0.113.0');
  });

  it("take Segment's pixel from its data parameter, and refuse data that is not base64 JSON", () => {
    const data = Buffer.from(JSON.stringify({ writeKey: 'k', anonymousId: 'a-1', event: 'Email Opened', messageId: 'm-1' })).toString('base64');
    const ok = pixelEvent([SEGMENT_FORM, SOURCE, `data=${encodeURIComponent(data)}`, 'track', undefined, 1, at]);
    expect(ok).toMatchObject({ ok: true, event: { sourceId: SOURCE, messageId: 'm-1', signals: { gpc: true, dnt: false }, event: { event: 'Email Opened' } } });
    expect(pixelEvent([SEGMENT_FORM, SOURCE, 'data=%0A%0A', 'track', undefined, 0, at])).toEqual({ ok: false, reason: 'malformed_data' });
    expect(pixelEvent([SIMPLE_FORM, SOURCE, 't=track&aid=a', 'track', undefined, 0, at])).toEqual({ ok: false, reason: 'invalid_event' });
  });
});

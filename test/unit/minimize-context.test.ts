import { minimizeContext } from '../../engine/events/minimize-context';
import { DEFAULT_PROPERTIES_FILE, PropertiesPolicy } from '../../engine/privacy/properties-policy';
import type { AcceptedEvent } from '../../schemas/segment';

const accepted = (context: Record<string, unknown>): AcceptedEvent => ({
  sourceId: '00000000-0000-4000-8000-000000000001',
  messageId: 'm',
  receivedAt: '2026-11-29T12:00:00Z',
  occurredAt: '2026-11-29T12:00:00Z',
  ipPrefix: '203.0.113.0',
  signals: { gpc: false, dnt: false },
  event: { type: 'page', anonymousId: 'a', context },
});

describe('context minimization', () => {
  it('scrubs before it cuts, so a long title cannot keep half an address', () => {
    const title = `${'x'.repeat(290)} jan.kowalski@example.com`;
    const kept = minimizeContext(accepted({ page: { title } })) as { page: { title: string } };
    expect(kept.page.title).not.toContain('jan.kowalski');
    expect(kept.page.title.length).toBeLessThanOrEqual(300);
  });

  it('keeps locale, time zone and library version only in their own shapes', () => {
    const kept = minimizeContext(accepted({ locale: 'pl-PL', timezone: 'Europe/Warsaw', library: { name: 'analytics.js', version: '5.2.0' } }));
    expect(kept).toMatchObject({ locale: 'pl-PL', timezone: 'Europe/Warsaw', library: { name: 'analytics.js', version: '5.2.0' } });
    const odd = minimizeContext(accepted({ locale: 'jan@example.com', timezone: 'call +48 601 234 567', library: { name: 'x jan@example.com', version: 'a b' } }));
    expect(JSON.stringify(odd)).not.toMatch(/jan@|601/);
    expect(odd).not.toHaveProperty('locale');
    expect(odd).not.toHaveProperty('timezone');
  });

  it('drops everything it does not know, the full IP included', () => {
    const kept = minimizeContext(accepted({ ip: '203.0.113.77', device: { id: 'device-123', advertisingId: 'ad-1' }, traits: { email: 'a@b.pl' } }));
    expect(kept).toEqual({ ipPrefix: '203.0.113.0' });
  });
});

describe('properties policy, nested values', () => {
  it('treats search as a query string and scrubs nested keys', () => {
    const policy = new PropertiesPolicy(DEFAULT_PROPERTIES_FILE);
    const kept = policy.minimizeProperties('page', 'Search', { search: '?q=shoes&tel=%2B48601234567', category: { 'jan@example.com': 1 } });
    expect(JSON.stringify(kept)).not.toMatch(/601234567|jan@example/);
    expect(kept.search).toContain('q=shoes');
  });
});

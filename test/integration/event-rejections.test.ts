import { sql } from 'kysely';
import type { AcceptedEvent } from '../../schemas/segment';
import { countEvents, startTestEngine, type TestEngine, waitForEvents } from '../support/engine';
import { waitFor } from '../support/wait';
import { rulesLinkingByDefault } from '../support/rules';

/**
 * A job from a producer that did not validate (an older API, a foreign tool) carrying one value
 * PostgreSQL refuses must not cost the other events of its batch.
 */
describe('events worker: a value PostgreSQL refuses', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ RULES_DIR: rulesLinkingByDefault() });
  });
  afterAll(async () => {
    await engine.stop();
  });

  it('stores the rest of the batch and sets the refused event aside, without its payload', async () => {
    const now = new Date().toISOString();
    const event = (messageId: string, title: string): AcceptedEvent => ({
      sourceId: engine.sourceId,
      messageId,
      receivedAt: now,
      occurredAt: now,
      signals: { gpc: false, dnt: false },
      event: { type: 'page', anonymousId: 'rejections', name: 'Page', properties: { title }, messageId },
    });
    // A lone surrogate: JSON carries it, jsonb refuses it (22P02).
    await engine.services.queues.enqueueBulk('events', 'ingest', [{ payload: { events: [event('ok-1', 'fine'), event('bad-1', 'x\ud800'), event('ok-2', 'fine')] } }], {
      prevalidated: true,
    });
    await waitForEvents(engine.services, 2, sql`message_id in ('ok-1', 'ok-2')`);
    const rejections = await waitFor(async () => {
      const rows = await engine.services.databases.db.selectFrom('app.event_rejections').selectAll().execute();
      return rows.length > 0 ? rows : undefined;
    });
    expect(rejections).toEqual([expect.objectContaining({ source_id: engine.sourceId, message_id: 'bad-1', reason: 'SQLSTATE 22P02' })]);
    expect(await countEvents(engine.services, sql`message_id = 'bad-1'`)).toBe(0);
    const counts = await engine.services.queues.counts();
    expect(counts.events.failed).toBe(0);
  });
});

import path from 'node:path';
import { sql } from 'kysely';
import { EventPartitions } from '../../engine/events/partitions';
import { processEventBatch } from '../../engine/events/process-batch';
import { describeSubject } from '../../engine/identity/subject';
import { createSource } from '../../engine/ingest/sources';
import { loadPropertiesPolicy } from '../../engine/privacy/properties-policy';
import type { AcceptedEvent } from '../../schemas/segment';
import { openTestServices, type TestServices } from '../support/services';

/**
 * The events worker's race safety without the queue in between: many batches processed at once on
 * separate connections, as concurrent worker processes would.
 */
describe('identity resolution under concurrency', () => {
  let env: TestServices;
  let sourceId: string;
  beforeAll(async () => {
    env = await openTestServices({ DATABASE_POOL_SIZE: '12' });
    sourceId = (await createSource(env.services.databases.db, 'race')).id;
  });
  afterAll(async () => {
    await env.close();
  });

  const event = (messageId: string, body: Record<string, unknown>): AcceptedEvent => {
    const now = new Date().toISOString();
    return { sourceId, messageId, receivedAt: now, occurredAt: now, signals: { gpc: false, dnt: false }, event: body };
  };

  it('makes one profile from 20 batches identifying the same email at once, and chains of merges converge', async () => {
    const deps = {
      databases: env.services.databases,
      keys: env.services.keys,
      policy: loadPropertiesPolicy(path.resolve(__dirname, '../../rules/properties.yaml')),
      partitions: new EventPartitions(env.services.databases.db),
    };
    // Each device first browses anonymously…
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => processEventBatch(deps, [event(`view-${i}`, { type: 'page', anonymousId: `device-${i}`, name: 'Home' })])),
    );
    // …then all identify with the same address at the same moment, some also with a user id.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        processEventBatch(deps, [
          event(`identify-${i}`, { type: 'identify', anonymousId: `device-${i}`, ...(i % 3 === 0 ? { userId: 'race-user' } : {}), traits: { email: 'Race@Example.com' } }),
        ]),
      ),
    );
    expect(outcomes.reduce((sum, o) => sum + o.stored, 0)).toBe(20);
    const profiles = await sql<{ n: string }>`select count(distinct profile_id)::text as n from app.events`.execute(env.services.databases.db);
    expect(profiles.rows[0]?.n).toBe('1');
    expect(await env.services.databases.db.selectFrom('app.profiles').select('id').execute()).toHaveLength(1);
    const subject = await describeSubject(env.services.databases, env.services.keys, { email: 'race@example.com' });
    expect(subject?.identifiers.filter((i) => i.kind === 'anonymous')).toHaveLength(20);
    expect(subject?.identifiers.filter((i) => i.kind === 'email')).toHaveLength(1);
    expect(subject?.events).toEqual([
      { type: 'identify', count: 20 },
      { type: 'page', count: 20 },
    ]);
    const leftKeys = await env.services.databases.vaultDb.selectFrom('vault.subject_keys').select('profile_id').execute();
    expect(leftKeys.map((k) => k.profile_id)).toEqual([subject?.profileId]);
  });
});

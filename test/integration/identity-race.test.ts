import path from 'node:path';
import { sql } from 'kysely';
import { EventPartitions } from '../../engine/events/partitions';
import { rulesLinkingByDefault } from '../support/rules';
import { type BatchDeps, processEventBatch } from '../../engine/events/process-batch';
import { describeSubject } from '../../engine/identity/subject';
import { createSource } from '../../engine/ingest/sources';
import { loadPropertiesPolicy } from '../../engine/privacy/properties-policy';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { openTestServices, type TestServices } from '../support/services';

/**
 * The events worker's race safety without the queue in between: many batches processed at once on
 * separate connections, as concurrent worker processes would.
 */
describe.each([
  ['the vault in the main database', false],
  ['the vault in its own database', true],
])('identity resolution under concurrency, with %s', (_label, separateVault) => {
  let env: TestServices;
  let vault: TestDatabase | undefined;
  let sourceId: string;
  let deps: BatchDeps;
  beforeAll(async () => {
    vault = separateVault ? await createTestDatabase() : undefined;
    env = await openTestServices({ DATABASE_POOL_SIZE: '12', RULES_DIR: rulesLinkingByDefault(), ...(vault ? { VAULT_DATABASE_URL: vault.url } : {}) });
    sourceId = (await createSource(env.services.databases.db, 'race')).id;
    deps = {
      databases: env.services.databases,
      keys: env.services.keys,
      policy: loadPropertiesPolicy(path.resolve(__dirname, '../../rules/properties.yaml')),
      partitions: new EventPartitions(env.services.databases.db),
      consent: { catalog: env.services.rules.purposes, honorDnt: true },
      automation: { compiled: env.services.rules.compiled, catalog: env.services.rules.purposes },
    };
  });
  afterAll(async () => {
    await env.close();
    await vault?.drop();
  });

  const event = (messageId: string, body: Record<string, unknown>): AcceptedEvent => {
    const now = new Date().toISOString();
    return { sourceId, messageId, receivedAt: now, occurredAt: now, signals: { gpc: false, dnt: false }, event: body as SegmentEvent };
  };

  it('makes one profile from 20 batches identifying the same email at once, and chains of merges converge', async () => {
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
    const pending = await env.services.databases.vaultDb.selectFrom('vault.profile_merges').select('loser_id').where('applied_at', 'is', null).execute();
    expect(pending).toEqual([]);
  });

  it('keeps every event on a live profile when anonymous visitors identify while others still browse', async () => {
    // 30 people, each known on one device and anonymous on another…
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => [
        processEventBatch(deps, [event(`b-known-${i}`, { type: 'identify', anonymousId: `b-laptop-${i}`, userId: `b-user-${i}` })]),
        processEventBatch(deps, [event(`b-anon-${i}`, { type: 'page', anonymousId: `b-phone-${i}`, name: 'Browse' })]),
      ]).flat(),
    );
    // …then identify on the second device (a merge) while both devices keep sending events.
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => [
        processEventBatch(deps, [event(`b-merge-${i}`, { type: 'identify', anonymousId: `b-phone-${i}`, userId: `b-user-${i}` })]),
        processEventBatch(deps, [event(`b-phone-more-${i}`, { type: 'page', anonymousId: `b-phone-${i}`, name: 'More' })]),
        processEventBatch(deps, [event(`b-laptop-more-${i}`, { type: 'page', anonymousId: `b-laptop-${i}`, name: 'More' })]),
      ]).flat(),
    );
    const orphans = await sql<{ n: string }>`
      select count(*)::text as n from app.events e
      where e.message_id like 'b-%' and not exists (select 1 from app.profiles p where p.id = e.profile_id)`.execute(env.services.databases.db);
    expect(orphans.rows[0]?.n).toBe('0');
    const perPerson = await sql<{ n: string }>`
      select count(distinct profile_id)::text as n from app.events where message_id like 'b-%'`.execute(env.services.databases.db);
    expect(perPerson.rows[0]?.n).toBe('30');
    for (const i of [0, 17, 29]) {
      const person = await describeSubject(env.services.databases, env.services.keys, { userId: `b-user-${i}` });
      expect(person?.events).toEqual([
        { type: 'identify', count: 2 },
        { type: 'page', count: 3 },
      ]);
    }
    const pending = await env.services.databases.vaultDb.selectFrom('vault.profile_merges').select('loser_id').where('applied_at', 'is', null).execute();
    expect(pending).toEqual([]);
  });
});

import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { SourceCache } from '../../engine/ingest/source-cache';
import { createSource } from '../../engine/ingest/sources';
import { openTestServices, type TestServices } from '../support/services';

describe('the write-key cache under a flood of bad keys', () => {
  let env: TestServices;
  beforeAll(async () => {
    env = await openTestServices();
  });
  afterAll(async () => {
    await env.close();
  });

  it('keeps nothing of keys without the shape of a write key, and lets random keys evict only each other', async () => {
    const db = env.services.databases.db;
    const site = await createSource(db, 'flooded site');
    const cache = new SourceCache(db, 60_000, 60_000, 100);
    expect((await cache.sourceFor(site.writeKey))?.id).toBe(site.id);

    // A 500 KB "key" in a body, a header's worth of junk: refused without an entry.
    for (const junk of ['x'.repeat(500_000), `wk_${'a'.repeat(300)}`, 'wk_short', '', 'wk_with space and more characters here']) {
      expect(await cache.sourceFor(junk)).toBeUndefined();
    }
    expect(cache.size).toBe(1);

    // Thousands of well-formed random keys: the unknown side stays at its bound...
    for (let i = 0; i < 2_000; i += 1) expect(await cache.sourceFor(`wk_${randomBytes(24).toString('base64url')}`)).toBeUndefined();
    expect(cache.size).toBe(101);
    // ...and the real source is still answered from the cache: revoked in the database meanwhile,
    // the cache (60 s here) still knows it, so it was never evicted and never looked up again.
    await sql`update app.sources set revoked_at = now() where id = ${site.id}`.execute(db);
    expect((await cache.sourceFor(site.writeKey))?.id).toBe(site.id);
    expect(await new SourceCache(db).sourceFor(site.writeKey)).toBeUndefined();
  });
});

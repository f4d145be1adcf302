import { randomUUID } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Services } from '../../engine/runtime/services';
import { identityKey } from '../../engine/identity/keys';
import { findProfileId } from '../../engine/identity/lookup';
import { queueSealingKey, unseal } from '../../engine/queues/sealing';
import { normalizeEmail, normalizeId } from '../../engine/vault/normalize';
import { basicAuth, postJson, type TestEngine } from './engine';
import { waitFor } from './wait';

/**
 * The test's own trace of a person and its own scan for it, written apart from the engine's
 * verification (engine/privacy/erasure), so a blind spot in one is not repeated in the other.
 */

export interface Person {
  readonly email: string;
  readonly userId: string;
  readonly anonymousId?: string;
  readonly firstName?: string;
}

export interface Trace {
  readonly profileIds: string[];
  readonly needles: string[];
  readonly emailHash: string;
}

/** Every identifier of the person the stores hold now: plaintext, pseudonyms, blind indexes, row ids. */
export async function traceOf(services: Services, person: Person): Promise<Trace> {
  const { db, vaultDb } = services.databases;
  const main = await findProfileId(vaultDb, services.keys, [{ userId: person.userId }, { email: person.email }]);
  const losers = main ? await vaultDb.selectFrom('vault.profile_merges').select('loser_id').where('winner_id', '=', main).execute() : [];
  const profileIds = [...(main ? [main] : []), ...losers.map((l) => l.loser_id)];
  const ids = profileIds.length ? profileIds : ['00000000-0000-0000-0000-000000000000'];
  const sends = await db.selectFrom('app.scheduled_sends').select('id').where('profile_id', 'in', ids).execute();
  const enrolments = await db.selectFrom('app.enrolments').select('id').where('profile_id', 'in', ids).execute();
  const confirmations = await db.selectFrom('app.consent_confirmations').select('id').where('profile_id', 'in', ids).execute();
  const hashes = await vaultDb.selectFrom('vault.identities').select('hash').where('profile_id', 'in', ids).execute();
  const emailHash = identityKey(services.keys.pseudonym, 'email', normalizeEmail(person.email) as string).hash.toString('hex');
  const needles = [
    person.email,
    person.userId,
    ...(person.anonymousId ? [person.anonymousId, identityKey(services.keys.pseudonym, 'anonymous', normalizeId(person.anonymousId) as string).hash.toString('hex')] : []),
    ...(person.firstName ? [person.firstName] : []),
    identityKey(services.keys.pseudonym, 'user', normalizeId(person.userId) as string).hash.toString('hex'),
    emailHash,
    ...profileIds,
    ...sends.map((s) => s.id),
    ...enrolments.map((e) => e.id),
    ...confirmations.map((c) => c.id),
    ...hashes.map((h) => h.hash.toString('hex')),
  ];
  return { profileIds, needles: [...new Set(needles.map((n) => n.toLowerCase()))], emailHash };
}

/** Tables (schema.table) with a row whose text holds a needle. */
export async function tablesHolding(db: Kysely<unknown>, schemas: readonly string[], needles: readonly string[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  // Partitions are read through their parent (app.events), so each row is seen once, under its table.
  const tables = await sql<{ schema: string; name: string }>`
    select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(${[...schemas]}::text[]) and c.relkind in ('r', 'p') and not c.relispartition`.execute(db);
  for (const t of tables.rows) {
    const rows = await sql<{ row: string }>`select t::text as row from ${sql.table(`${t.schema}.${t.name}`)} t`.execute(db);
    for (const { row } of rows.rows) {
      const lower = row.toLowerCase();
      const hits = needles.filter((n) => lower.includes(n));
      if (hits.length > 0) found.set(`${t.schema}.${t.name}`, [...(found.get(`${t.schema}.${t.name}`) ?? []), ...hits]);
    }
  }
  return found;
}

/** Redis keys (any prefix) whose name or value holds a needle; job payloads under `prefix` are unsealed. */
export async function redisKeysHolding(services: Services, needles: readonly string[]): Promise<string[]> {
  const redis = services.redis;
  const prefix = services.config.queuePrefix;
  const sealingKey = queueSealingKey(services.keys.master);
  const hits: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', '1000');
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      let text = key;
      if (type === 'string') text += (await redis.getBuffer(key))?.toString('latin1') ?? '';
      else if (type === 'hash') {
        const fields = await redis.hgetall(key);
        const sealed = fields.data?.includes('"sealed"') === true;
        // Ciphertext is not searched as text: its base64 matches a short needle (a first name) by
        // chance once Redis holds enough of it (another run's jobs). This engine's sealed jobs are
        // opened and searched in clear instead; another deployment's cannot hold this run's people.
        text += JSON.stringify(sealed ? { ...fields, data: '[sealed]' } : fields);
        const [, queue] = key.slice(prefix.length).split(':');
        if (key.startsWith(`${prefix}:`) && sealed && fields.name) {
          try {
            text += JSON.stringify(unseal(sealingKey, `${queue}/${fields.name}`, JSON.parse(fields.data as string)));
          } catch {}
        }
      } else if (type === 'list') text += (await redis.lrange(key, 0, -1)).join(' ');
      else if (type === 'set') text += (await redis.smembers(key)).join(' ');
      else if (type === 'zset') text += (await redis.zrange(key, '0', '-1')).join(' ');
      else if (type === 'stream') text += JSON.stringify(await redis.xrange(key, '-', '+'));
      const lower = text.toLowerCase();
      if (needles.some((n) => lower.includes(n))) hits.push(key);
    }
  } while (cursor !== '0');
  return hits;
}

/** A person with analytics consent, an identify (address, first name) and 5 events, through the tracking API, stored. */
export async function storeSmallPerson(engine: TestEngine, tag: string): Promise<Person & { anonymousId: string }> {
  const p = { email: `${tag}@example.org`, userId: `${tag}-${randomUUID()}`, anonymousId: `anon-${randomUUID()}`, firstName: `Name${tag}` };
  const auth = { authorization: basicAuth(engine.writeKey) };
  const banner = { anonymousId: p.anonymousId, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner' };
  expect((await postJson(`${engine.url}/v1/consent`, banner, auth)).status).toBe(200);
  const batch = [
    { type: 'identify', userId: p.userId, anonymousId: p.anonymousId, traits: { email: p.email, firstName: p.firstName } },
    ...Array.from({ length: 5 }, (_, i) => ({ type: 'track', userId: p.userId, event: 'Article Read', properties: { n: i } })),
  ];
  expect((await postJson(`${engine.url}/v1/batch`, { batch }, auth)).status).toBe(200);
  const { db, vaultDb } = engine.services.databases;
  await waitFor(
    async () => {
      const id = await findProfileId(vaultDb, engine.services.keys, [{ userId: p.userId }]);
      if (!id) return false;
      return Number((await db.selectFrom('app.events').select((eb) => eb.fn.countAll<string>().as('n')).where('profile_id', '=', id).executeTakeFirstOrThrow()).n) >= 6;
    },
    { what: `${tag} stored` },
  );
  return p;
}

/** Nothing of the person anywhere but the suppression hash and the tombstones, and nobody found by their ids. */
export async function expectErased(services: Services, p: Person, trace: Trace): Promise<void> {
  const db = services.databases.db as unknown as Kysely<unknown>;
  const left = await tablesHolding(db, ['app', 'vault'], trace.needles);
  expect([...left.keys()].filter((t) => t !== 'app.suppressions' && t !== 'vault.erasure_tombstones')).toEqual([]);
  expect(await redisKeysHolding(services, trace.needles)).toEqual([]);
  expect(await findProfileId(services.databases.vaultDb, services.keys, [{ userId: p.userId }, { email: p.email }])).toBeUndefined();
}

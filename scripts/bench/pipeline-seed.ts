/**
 * Seeds N known people into a migrated bench database, stored as the events worker stores a person
 * it has met before (engine/identity/resolve.ts, engine/vault/fields.ts, engine/events/app-writes.ts),
 * for `npm run bench:pipeline`:
 *
 * - vault.subject_keys: a random data key per person, wrapped by the master key (AES-256-GCM, the
 *   profile id as AAD), and vault.subject_fields: the person's address sealed under that key;
 * - vault.identities: blind indexes (HMAC-SHA256 with the pseudonym key) of their user id, address
 *   and an anonymous id (a cookie), so events carrying `user-<i>` / `anon-<i>` resolve to them;
 * - app.profiles with traits and their provenance ({v, src, at});
 * - app.consent_ledger: the cookie banner accepted by 8 in 10 (analytics and profiling), analytics
 *   alone by 1 in 10, nothing by 1 in 10; email_marketing confirmed by double opt-in by 3 in 10;
 * - app.segment_state: one row per condition segment per person, as after their last evaluation.
 *
 * What needs the keys (AES-GCM, HMAC) is computed here, in chunks, while PostgreSQL inserts the
 * previous chunk (sent as one bytea each, cut with substring); the rest is set-based SQL over a temp
 * table of the people. Secondary indexes of the seeded tables are dropped first and created again
 * afterwards from their own definitions (pg_get_indexdef), then the tables are vacuumed and analyzed.
 *
 * Person i: profile id `uuidOf(i)` (an md5 of the index, shaped as a version-4 uuid, so ids are as
 * scattered as random ones), userId `user-<i>`, anonymousId `anon-<i>`, address
 * `person-<i, 7 digits>@bench.example.com`.
 */
import { createCipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { parse } from 'yaml';
import { ROOT } from './harness';

const CHUNK = 50_000;
const SEALED = 1 + 12 + 16 + 32; // version | IV | tag | 32 bytes (a data key, or a 32-character address)
const HASH = 32;
const PER_PERSON = SEALED * 2 + HASH * 3;

/** The condition segments of rules/segments (the manual one has no rows until a campaign adds someone). */
const SEGMENTS = ['dormant_readers', 'engaged_readers', 'newsletter_subscribers', 'vip'] as const;

/** Person i's profile id: md5 of the index with the version and variant nibbles of a v4 uuid (the SQL below computes the same). */
export function uuidOf(i: number): string {
  const h = createHash('md5').update(`cf-bench-person-${i}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
const SQL_UUID_OF = (i: string) =>
  `(select (substr(h, 1, 12) || '4' || substr(h, 14, 3) || '8' || substr(h, 18, 15))::uuid from (select md5('cf-bench-person-' || ${i}) as h) m)`;

export const userIdOf = (i: number) => `user-${i}`;
export const anonymousIdOf = (i: number) => `anon-${i}`;
export const emailOf = (i: number) => `person-${String(i).padStart(7, '0')}@bench.example.com`;
/** Consent of person i (the same rule as the SQL below): analytics links events, profiling allows segments and triggers. */
export const consentOf = (i: number) => ({ analytics: i % 10 <= 8, profiling: i % 10 <= 7, emailMarketing: i % 10 <= 2 });

function seal(key: Buffer, plaintext: Buffer, aad: string, out: Buffer, at: number): void {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  if (body.length !== 32) throw new Error(`sealed body of ${body.length} bytes, expected 32`);
  out[at] = 0x01;
  iv.copy(out, at + 1);
  cipher.getAuthTag().copy(out, at + 13);
  body.copy(out, at + 29);
}

const blind = (pseudonym: Buffer, kind: string, value: string) => createHmac('sha256', pseudonym).update(`${kind}\0${value}`, 'utf8').digest();

/** Everything of people [from, to) that needs a key, one bytea: per person wrapped key, sealed address, three blind indexes. */
function keyedChunk(master: Buffer, pseudonym: Buffer, from: number, to: number): Buffer {
  const out = Buffer.allocUnsafe((to - from) * PER_PERSON);
  const deks = randomBytes(32 * (to - from));
  for (let i = from; i < to; i++) {
    const at = (i - from) * PER_PERSON;
    const id = uuidOf(i);
    const dek = deks.subarray((i - from) * 32, (i - from + 1) * 32);
    seal(master, dek, id, out, at);
    seal(dek, Buffer.from(emailOf(i), 'utf8'), `${id}:email`, out, at + SEALED);
    blind(pseudonym, 'user', userIdOf(i)).copy(out, at + 2 * SEALED);
    blind(pseudonym, 'email', emailOf(i)).copy(out, at + 2 * SEALED + HASH);
    blind(pseudonym, 'anonymous', anonymousIdOf(i)).copy(out, at + 2 * SEALED + 2 * HASH);
  }
  return out;
}

/** The notice texts' hashes, as engine/consent/purposes.ts computes them (sha256 of the text). */
function noticeHashes(): Map<string, Buffer> {
  const file = parse(fs.readFileSync(path.join(ROOT, 'rules', 'purposes.yaml'), 'utf8')) as { notices: Array<{ id: string; version: number; text: string }> };
  return new Map(file.notices.map((n) => [`${n.id}:${n.version}`, createHash('sha256').update(n.text, 'utf8').digest()]));
}

export interface SeedResult {
  readonly people: number;
  readonly seconds: number;
  readonly steps: ReadonlyArray<{ readonly step: string; readonly seconds: number }>;
  readonly rows: Readonly<Record<string, number>>;
  /** Whether FK and trigger checks were skipped while loading (session_replication_role = replica, superuser only). */
  readonly replicaRole: boolean;
}

const SEEDED_TABLES = ['vault.subject_keys', 'vault.subject_fields', 'vault.identities', 'app.profiles', 'app.consent_ledger', 'app.segment_state'];

/**
 * Seeds `people` people through `client` (a connection to the bench database, which the engine's
 * migrations have created). `log` gets one line per step.
 */
export async function seedPeople(
  client: pg.Client,
  options: { people: number; sourceId: string; masterKey: Buffer; pseudonymKey: Buffer; log: (line: string) => void },
): Promise<SeedResult> {
  const { people: n, sourceId, masterKey, pseudonymKey, log } = options;
  const started = performance.now();
  const steps: Array<{ step: string; seconds: number }> = [];
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const at = performance.now();
    const out = await work();
    const seconds = (performance.now() - at) / 1_000;
    steps.push({ step, seconds });
    log(`  ${step}: ${seconds.toFixed(1)} s`);
    return out;
  };
  const q = (text: string, values: unknown[] = []) => client.query(text, values);

  await q(`set synchronous_commit = off`);
  await q(`set maintenance_work_mem = '256MB'`);
  await q(`set work_mem = '64MB'`);
  let replicaRole = true;
  try {
    // Skips the foreign-key triggers of vault.identities and vault.subject_fields while loading rows
    // that satisfy them by construction.
    await q(`set session_replication_role = replica`);
  } catch {
    replicaRole = false;
  }

  const indexes = await timed('secondary indexes of the seeded tables dropped', async () => {
    const { rows } = await q(
      `select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as def
       from pg_index i where i.indrelid = any($1::regclass[])
         and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`,
      [SEEDED_TABLES],
    );
    for (const r of rows as Array<{ name: string }>) await q(`drop index ${r.name}`);
    return rows as Array<{ name: string; def: string }>;
  });

  await timed('people (temp table)', async () => {
    await q(
      `create temp table people on commit preserve rows as
       select i, ${SQL_UUID_OF('i')} as id,
              i % 10 as consent_class,
              (array['free', 'free', 'free', 'free', 'free', 'free', 'free', 'pro', 'pro', 'team'])[1 + (i / 10) % 10] as plan,
              now() - make_interval(secs => ((i::bigint * 7919) % (28 * 86400))::double precision) as last_seen,
              now() - make_interval(days => 30 + (i % 700)) as created
       from generate_series(0, $1::int - 1) i`,
      [n],
    );
    await q(`create unique index on people (i)`);
    await q(`analyze people`);
  });
  const first = (await q(`select id::text from people where i = 0`)).rows[0] as { id: string } | undefined;
  if (first?.id !== uuidOf(0)) throw new Error(`profile id of person 0: SQL ${first?.id}, Node ${uuidOf(0)}`);

  await timed(`vault: keys wrapped, addresses sealed, blind indexes (computed here, chunks of ${CHUNK.toLocaleString('en')})`, async () => {
    let pending: Promise<unknown> = Promise.resolve();
    for (let from = 0; from < n; from += CHUNK) {
      const to = Math.min(n, from + CHUNK);
      const blob = keyedChunk(masterKey, pseudonymKey, from, to);
      await pending;
      pending = (async () => {
        const args = [blob, from, to, sourceId];
        const part = (offset: number, length: number) => `substring($1::bytea from (p.i - $2) * ${PER_PERSON} + ${offset + 1} for ${length})`;
        await q(
          `insert into vault.subject_keys (profile_id, wrapped_key, created_at)
           select p.id, ${part(0, SEALED)}, p.created from people p where p.i >= $2 and p.i < $3 order by p.id`,
          args.slice(0, 3),
        );
        await q(
          `insert into vault.subject_fields (profile_id, field, ciphertext, source_id, acquired_at)
           select p.id, 'email', ${part(SEALED, SEALED)}, $4::uuid, p.created from people p where p.i >= $2 and p.i < $3 order by p.id`,
          args,
        );
        await q(
          `insert into vault.identities (kind, hash, profile_id, source_id, created_at)
           select k.kind, substring($1::bytea from (p.i - $2) * ${PER_PERSON} + ${2 * SEALED + 1} + k.n * ${HASH} for ${HASH}), p.id, $4::uuid, p.created
           from people p cross join (values (0, 'user'), (1, 'email'), (2, 'anonymous')) k(n, kind)
           where p.i >= $2 and p.i < $3`,
          args,
        );
      })();
    }
    await pending;
  });

  await timed('app.profiles (traits with provenance)', () =>
    q(
      `insert into app.profiles (id, source_id, created_at, updated_at, last_seen_at, traits)
       select id, $1::uuid, created, last_seen, last_seen,
         jsonb_build_object(
           'plan', jsonb_build_object('v', plan, 'src', $1::text, 'at', created),
           'country', jsonb_build_object('v', (array['PL', 'DE', 'FR', 'ES', 'IT'])[1 + i % 5], 'src', $1::text, 'at', created),
           'language', jsonb_build_object('v', (array['pl', 'de', 'fr', 'es', 'it'])[1 + i % 5], 'src', $1::text, 'at', created))
       from people order by id`,
      [sourceId],
    ),
  );

  const hashes = noticeHashes();
  await timed('app.consent_ledger (cookie banner, double opt-in)', () =>
    q(
      `insert into app.consent_ledger (profile_id, purpose, decision, occurred_at, recorded_at, source_kind, source_id, method,
                                       notice_id, notice_version, notice_hash, ip_prefix, event_message_id)
       select p.id, c.purpose, 'granted', p.created + c.after, p.created + c.after, c.source_kind, $1::uuid, c.method,
              c.notice, 1, case c.notice when 'cookie_banner' then $2::bytea else $3::bytea end, '203.0.113.0', 'consent-' || p.i
       from people p cross join (values
           ('analytics', 8, interval '1 minute', 'write_key', 'banner', 'cookie_banner'),
           ('profiling', 7, interval '1 minute', 'write_key', 'banner', 'cookie_banner'),
           ('email_marketing', 2, interval '1 day', 'email_link', 'double_opt_in', 'newsletter_form')
         ) c(purpose, upto, after, source_kind, method, notice)
       where p.consent_class <= c.upto
       order by p.id`,
      [sourceId, hashes.get('cookie_banner:1'), hashes.get('newsletter_form:1')],
    ),
  );

  await timed('app.segment_state (4 condition segments a person)', () =>
    q(
      // As after each person's last evaluation: subscribers by consent; VIP by plan, with consent to
      // profiling; nobody engaged or dormant (no reads seeded; last seen within 28 days, so a
      // subscriber's dormant check is due 30 days after it).
      `insert into app.segment_state (profile_id, segment_id, member, changed_at, recheck_at)
       select p.id, s.segment,
              case s.segment when 'newsletter_subscribers' then p.consent_class <= 2
                             when 'vip' then p.consent_class <= 7 and p.plan in ('pro', 'team')
                             else false end,
              p.last_seen,
              case when s.segment = 'dormant_readers' and p.consent_class <= 2 then p.last_seen + interval '30 days' end
       from people p cross join unnest($1::text[]) s(segment)
       order by p.id, s.segment`,
      [SEGMENTS],
    ),
  );

  await q(`set session_replication_role = default`).catch(() => undefined);
  await timed(`secondary indexes created again (${indexes.length})`, async () => {
    for (const index of indexes) await q(index.def);
  });
  await timed('vacuum analyze of the seeded tables', async () => {
    for (const table of SEEDED_TABLES) await q(`vacuum analyze ${table}`);
  });
  await q(`drop table people`);

  const rows: Record<string, number> = {};
  for (const table of SEEDED_TABLES) rows[table] = Number((await q(`select count(*)::text as n from ${table}`)).rows[0]?.n ?? 0);
  return { people: n, seconds: (performance.now() - started) / 1_000, steps, rows, replicaRole };
}

/**
 * `npm run bench:erasure`: how long the erasure worker's job (engine/privacy/erasure) takes for a
 * very active person and how many small erasures a second one process completes, in a database of
 * over a million events, beside a same-run floor: the same person's rows deleted by plain SQL. Issue
 * 7 asks for a person with 10,000 events erased and verified (step 7, by index) in ≤ 1 s at p95, in a
 * database of ≥ 1,000,000 events, and ≥ 100 small erasures a second; issue 9 adds that ingest
 * throughput drops ≤ 20 % meanwhile. Prints a table and writes docs/benchmarks.md's erasure section
 * (under a hand-written analysis). Options:
 * - `--quick`: 100,000 events, 3 heavy and 100 small people, three ingest windows of 4 s. A smoke
 *   run, under a minute; it leaves the docs unchanged, since its database is a tenth of the target's
 *   size, and its figures are not judged.
 * - `--results FILE`: the figures for the suite (scripts/bench/results.ts).
 * - `--concurrency=N`: small erasures in flight at once (default 50, the erasure worker's concurrency).
 *   They go through the worker's grouping (engine/privacy/erasure/grouper.ts, run-group.ts), so
 *   those in flight together run their steps together.
 * - `--profile`: a CPU profile of this process while it runs the small erasures, summarized (self
 *   time by package and function) after the table.
 * - `--keep`: leaves the database for a look with psql. The probe, a heavy person nobody erases, is
 *   in it.
 *
 * 1. A private database filled with set-based SQL, not through the API: 100,000 people, each with a
 *    profile, a wrapped data key, blind indexes (email, user id, and an anonymous id for the third
 *    merged from an anonymous visitor), an encrypted address, consent ledger rows, segment rows and
 *    decisions; one in ten enrolled in a journey with a sent and a scheduled send (relayed through
 *    the outbox); ≥ 1,000,000 events over four monthly partitions, inserted in time order (as they
 *    arrive, so a person's events are spread over the table) with their receipts. Among them 20
 *    heavy people with 10,000 events each (60 consent rows, 20 segments, 300 decisions, 5 journeys,
 *    a double opt-in), 5 twins of theirs for the floor, the probe (the same, never erased: the
 *    EXPLAINs run on it, rolled back) and 1,000 small people with 5 events each.
 * 2. Redis under its own prefix, small but with what step 4 scans: 300 ingest jobs of 50 events
 *    delayed in the events queue (batches waiting for a retry), sealed as the API adds them. Among those events is one of each
 *    heavy person and of every other small person, five to a batch, so erasures running at once
 *    meet in the same jobs. Also the erased people's delayed sends and wake-ups, and 500 other
 *    people's delayed sends. Afterwards the queued batches are checked for the erased people's events.
 * 3. Heavy people one at a time: createErasureRequest by email (the normal path: the blind index),
 *    then runErasure with every step timed (afterStep); then verifyByIndex alone on the same work.
 *    Before every fourth one, a twin's rows deleted by plain SQL in one transaction, with its
 *    statements timed; this is the floor. Then 1,000 small requests are created and run N in flight
 *    in this process, none started after 180 s.
 * 4. Ingest while erasing (issue 9): the API and one events worker, each its own process, take
 *    autocannon's batched POSTs (50 events, 50 connections, as bench:ingest) in windows of the same
 *    length, alternately without erasures and while one erasure worker process works through queued
 *    requests of more heavy and small people (kept apart for this, `window`). The drop is the mean
 *    of the windows with erasures against the mean of those without, for events accepted and for
 *    events stored by the worker. What the worker did not reach is then erased here, so the checks
 *    below cover everyone requested.
 *
 * The engine is loaded from dist/ (as the erasure worker runs it; the npm script builds first):
 * tsx's transform of the source slows CPU-bound code. Needs PostgreSQL and Redis (DATABASE_URL /
 * REDIS_URL, or the local defaults); uses its own database and queue prefix and removes them.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { CompiledQuery, type Kysely, sql } from 'kysely';
import pg from 'pg';
import type * as ConfigModule from '../../engine/config';
import type * as OutboxModule from '../../engine/outbox/outbox';
import type { VaultDatabase } from '../../engine/db/types';
import type * as PartitionsModule from '../../engine/events/partitions';
import type * as RowsModule from '../../engine/events/rows';
import type * as KeysModule from '../../engine/identity/keys';
import type * as LookupModule from '../../engine/identity/lookup';
import type * as SourcesModule from '../../engine/ingest/sources';
import type * as LoggerModule from '../../engine/log/logger';
import type * as PersonColumnsModule from '../../engine/privacy/erasure/person-columns';
import type * as PurgeRedisModule from '../../engine/privacy/erasure/purge-redis';
import type * as RequestModule from '../../engine/privacy/erasure/request';
import type * as RunErasureModule from '../../engine/privacy/erasure/run-erasure';
import type * as GrouperModule from '../../engine/privacy/erasure/grouper';
import type * as RunGroupModule from '../../engine/privacy/erasure/run-group';
import type * as VerifyModule from '../../engine/privacy/erasure/verify';
import type { ErasureWork } from '../../engine/privacy/erasure/work';
import type * as SealingModule from '../../engine/queues/sealing';
import type * as ServicesModule from '../../engine/runtime/services';
import type { Services } from '../../engine/runtime/services';
import type * as FieldsModule from '../../engine/vault/fields';
import type * as NormalizeModule from '../../engine/vault/normalize';
import type { AcceptedEvent } from '../../schemas/segment';
import { formatProfileSummary, summarizeProfile } from './cpu-profile';
import { startInspectorProfile } from './inspector-profile';
import { deleteKeys } from './redis-memory';
import { type CpuWindow, startCpuWindow } from './proc-cpu';
import { type BenchDatabase, createBenchDatabase, machine, REDIS_URL, ROOT, runNode, startProcess, stopProcess, writeDocsSection } from './harness';
import { type Figure, writeResults } from './results';

const quick = process.argv.includes('--quick');
/** Leaves the database (and its probe, a heavy person nobody erases) for a look with psql afterwards. */
const keep = process.argv.includes('--keep');
/** `--profile`: a CPU profile of this process over the small erasures, summarized after the table. */
const profiling = process.argv.includes('--profile');
/** Small erasures in flight at once; the erasure worker's concurrency (engine/queues/catalog.ts) by default. */
const CONCURRENCY = Number(process.argv.find((a) => a.startsWith('--concurrency='))?.split('=')[1] ?? 50);
const PROFILES = quick ? 10_000 : 100_000;
const TARGET_EVENTS = quick ? 100_000 : 1_000_000;
const HEAVY = quick ? 3 : 20;
const TWINS = quick ? 2 : 5;
const HEAVY_EVENTS = 10_000;
const SMALL = quick ? 100 : 1_000;
const SMALL_EVENTS = 5;
/** People kept for the ingest windows (erased by the erasure worker while events are ingested): heavy and small. */
const WINDOW_HEAVY = quick ? 2 : 8;
const WINDOW_SMALL = quick ? 100 : 400;
/** The ingest windows, alternately without erasures and with them (a drift in either direction then cancels out), and their length, seconds. */
const WINDOWS = quick ? 3 : 5;
const WINDOW_S = quick ? 4 : 10;
/** In the erasure worker's queue, a heavy person's request every this many, from the second on. */
const HEAVY_EVERY = 8;
const INGEST_CONNECTIONS = 50;
const INGEST_BATCH = 50;
const TARGET_INGEST_DROP = 0.2;
const EVENT_JOBS = quick ? 100 : 300;
const EVENTS_PER_JOB = 50;
const OTHER_SENDS = 500;
/** No small erasure is started after this long (the run stays under ten minutes whatever the rate). */
const SMALL_BUDGET_S = quick ? 60 : 180;
const MONTHS = 4;
const TARGET_HEAVY_P95_MS = 1_000;
/** The size of database issue 7 names; a `--quick` database is smaller, so its verdict is a miss. */
const TARGET_DATABASE_EVENTS = 1_000_000;
const TARGET_SMALL_RATE = 100;
const STEP_NAMES = ['1 resolve, tombstone', '2 shred vault', '3 delete app rows', '4 Redis purge', '5 webhooks', '6 suppress', '7 verify by index', '8 receipt'] as const;

// ── the engine, as tsc compiled it ──────────────────────────────────────────────────────────────

function fromDist<T>(relative: string): T {
  const file = path.join(ROOT, 'dist', relative);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (or \`npm run bench:erasure\`, which builds first)`);
  return require(file) as T;
}
const engine = {
  config: fromDist<typeof ConfigModule>('engine/config/index.js'),
  logger: fromDist<typeof LoggerModule>('engine/log/logger.js'),
  services: fromDist<typeof ServicesModule>('engine/runtime/services.js'),
  sources: fromDist<typeof SourcesModule>('engine/ingest/sources.js'),
  partitions: fromDist<typeof PartitionsModule>('engine/events/partitions.js'),
  rows: fromDist<typeof RowsModule>('engine/events/rows.js'),
  keys: fromDist<typeof KeysModule>('engine/identity/keys.js'),
  lookup: fromDist<typeof LookupModule>('engine/identity/lookup.js'),
  normalize: fromDist<typeof NormalizeModule>('engine/vault/normalize.js'),
  fields: fromDist<typeof FieldsModule>('engine/vault/fields.js'),
  sealing: fromDist<typeof SealingModule>('engine/queues/sealing.js'),
  request: fromDist<typeof RequestModule>('engine/privacy/erasure/request.js'),
  run: fromDist<typeof RunErasureModule>('engine/privacy/erasure/run-erasure.js'),
  group: fromDist<typeof RunGroupModule>('engine/privacy/erasure/run-group.js'),
  grouper: fromDist<typeof GrouperModule>('engine/privacy/erasure/grouper.js'),
  verify: fromDist<typeof VerifyModule>('engine/privacy/erasure/verify.js'),
  columns: fromDist<typeof PersonColumnsModule>('engine/privacy/erasure/person-columns.js'),
  purgeRedis: fromDist<typeof PurgeRedisModule>('engine/privacy/erasure/purge-redis.js'),
  outbox: fromDist<typeof OutboxModule>('engine/outbox/outbox.js'),
};

// ── figures ─────────────────────────────────────────────────────────────────────────────────────

/** Nearest-rank quantile (p95 of 20 samples is the 19th). */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] ?? 0;
}
const ms = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en') : n.toFixed(1));
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const spread = (values: readonly number[]) => `${ms(quantile(values, 0.5))} / ${ms(quantile(values, 0.95))} / ${ms(Math.max(...values))}`;
const seconds = (since: number) => (performance.now() - since) / 1_000;
const say = (line: string) => process.stdout.write(`${line}\n`);

// ── the population ──────────────────────────────────────────────────────────────────────────────

type Kind = 'heavy' | 'twin' | 'probe' | 'small' | 'background';

interface Person {
  readonly idx: number;
  readonly id: string;
  readonly kind: Kind;
  /** Kept for the ingest windows: erased by the erasure worker while events are ingested, not in the timed phases. */
  readonly window: boolean;
  readonly events: number;
  readonly email: string;
  readonly userId: string;
  /** An anonymous visitor merged into this profile (vault.profile_merges), for a third of the people. */
  readonly loserId: string | undefined;
}

function population(): Person[] {
  const smallEnd = HEAVY + TWINS + 1 + SMALL;
  const special = smallEnd + WINDOW_HEAVY + WINDOW_SMALL;
  const background = PROFILES - special;
  const perBackground = Math.ceil((TARGET_EVENTS - (HEAVY + TWINS + 1 + WINDOW_HEAVY) * HEAVY_EVENTS - (SMALL + WINDOW_SMALL) * SMALL_EVENTS) / background);
  return Array.from({ length: PROFILES }, (_, idx) => {
    const window = idx >= smallEnd && idx < special;
    const kind: Kind =
      idx < HEAVY ? 'heavy' : idx < HEAVY + TWINS ? 'twin' : idx === HEAVY + TWINS ? 'probe' : idx < smallEnd ? 'small' : !window ? 'background' : idx < smallEnd + WINDOW_HEAVY ? 'heavy' : 'small';
    const events = kind === 'heavy' || kind === 'twin' || kind === 'probe' ? HEAVY_EVENTS : kind === 'small' ? SMALL_EVENTS : perBackground;
    const merged = kind !== 'background' || idx % 3 === 0;
    return { idx, id: randomUUID(), kind, window, events, email: `person-${idx}@bench.example.com`, userId: `user-${idx}`, loserId: merged ? randomUUID() : undefined };
  });
}

interface Fill {
  readonly events: number;
  readonly partitions: number;
  readonly seconds: Record<string, number>;
  readonly sizes: string;
  readonly rows: Record<string, number>;
}

const chunks = <T>(items: readonly T[], size: number): T[][] => Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));

/** The vault: a wrapped data key, blind indexes, the encrypted address and merges, written as the engine writes them. */
async function fillVault(services: Services, people: readonly Person[], sourceId: string): Promise<void> {
  const vault = services.databases.vaultDb as Kysely<VaultDatabase>;
  const { master, pseudonym } = services.keys;
  const blind = (kind: 'email' | 'user' | 'anonymous', value: string | undefined) => engine.keys.identityKey(pseudonym, kind, value as string).hash;
  const acquiredAt = new Date(Date.now() - 90 * 86_400_000);
  for (const chunk of chunks(people, 5_000)) {
    const keyed = chunk.map((p) => ({ p, ...engine.fields.newSubjectKeyRow(master, p.id) }));
    await vault.insertInto('vault.subject_keys').values(keyed.map((k) => k.row)).execute();
    await vault
      .insertInto('vault.identities')
      .values(
        chunk.flatMap((p) => [
          { kind: 'email' as const, hash: blind('email', engine.normalize.normalizeEmail(p.email)), profile_id: p.id, source_id: sourceId },
          { kind: 'user' as const, hash: blind('user', engine.normalize.normalizeId(p.userId)), profile_id: p.id, source_id: sourceId },
          ...(p.loserId ? [{ kind: 'anonymous' as const, hash: blind('anonymous', engine.normalize.normalizeId(`visitor-${p.idx}`)), profile_id: p.id, source_id: sourceId }] : []),
        ]),
      )
      .execute();
    await engine.fields.writeFields(
      vault,
      keyed.map((k) => ({ key: k.key, field: 'email', value: k.p.email, sourceId, acquiredAt })),
    );
    const merges = chunk.filter((p) => p.loserId);
    if (merges.length > 0) {
      await vault
        .insertInto('vault.profile_merges')
        .values(merges.map((p) => ({ loser_id: p.loserId as string, winner_id: p.id, merged_at: acquiredAt, applied_at: acquiredAt })))
        .execute();
    }
  }
}

/** Receipts of every event (a keyed hash of its messageId, engine/events/rows.ts), in pages. */
async function fillReceipts(client: pg.Client, people: readonly Person[], sourceId: string, pseudonym: Buffer): Promise<number> {
  let page: string[] = [];
  let n = 0;
  const flush = async () => {
    if (page.length === 0) return;
    await client.query('insert into app.event_receipts (source_id, message_id, received_at) select $1, m, now() from unnest($2::text[]) m', [sourceId, page]);
    n += page.length;
    page = [];
  };
  for (const p of people) {
    for (let e = 1; e <= p.events; e++) {
      page.push(engine.rows.receiptMessageId(pseudonym, `m-${p.idx}-${e}`));
      if (page.length >= 50_000) await flush();
    }
  }
  await flush();
  return n;
}

async function fillDatabase(services: Services, url: string, people: readonly Person[]): Promise<{ fill: Fill; sourceId: string }> {
  const times: Record<string, number> = {};
  const timed = async <T>(what: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const out = await work();
    times[what] = seconds(started);
    say(`  ${what}: ${times[what]?.toFixed(1)} s`);
    return out;
  };
  const db = services.databases.db;
  const source = await engine.sources.createSource(db, 'bench erasure');
  const sourceId = source.id;
  const now = new Date();
  const months = Array.from({ length: MONTHS }, (_, i) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (MONTHS - 1 - i), 1)));
  await new engine.partitions.EventPartitions(db).ensure(months);

  // Two connections: events by SQL on one while this process hashes receipts onto the other.
  const sqlClient = new pg.Client({ connectionString: url });
  const receiptClient = new pg.Client({ connectionString: url });
  await sqlClient.connect();
  await receiptClient.connect();
  try {
    await timed('vault (keys, blind indexes, encrypted addresses, merges)', () => fillVault(services, people, sourceId));
    await sqlClient.query('create temp table people (idx int primary key, id uuid not null, kind text not null, events int not null)');
    for (const chunk of chunks(people, 20_000)) {
      await sqlClient.query('insert into people select * from unnest($1::int[], $2::uuid[], $3::text[], $4::int[])', [
        chunk.map((p) => p.idx),
        chunk.map((p) => p.id),
        chunk.map((p) => p.kind),
        chunk.map((p) => p.events),
      ]);
    }
    const q = (text: string, values: unknown[] = []) => sqlClient.query(text, values);
    await timed('profiles', () =>
      q(
        `insert into app.profiles (id, source_id, created_at, updated_at, last_seen_at, traits)
         select id, $1::uuid, now() - interval '120 days', now(), now(),
           jsonb_build_object('plan', jsonb_build_object('v', (array['free', 'pro', 'business'])[1 + idx % 3], 'src', $1::text, 'at', now()),
                              'country', jsonb_build_object('v', 'PL', 'src', $1::text, 'at', now()))
         from people`,
        [sourceId],
      ),
    );
    const eventsAndReceipts = Promise.all([
      (async () => {
        const started = performance.now();
        for (let m = 0; m < MONTHS; m++) {
          const from = months[m] as Date;
          const to = m === MONTHS - 1 ? new Date(now.getTime() - 60_000) : (months[m + 1] as Date);
          // In time order, as events arrive: a person's events end up spread over the whole partition.
          await q(
            `insert into app.events (profile_id, source_id, message_id, type, name, occurred_at, received_at, properties, context)
             select id, $1, 'm-' || idx || '-' || n, case when n % 5 = 0 then 'page' else 'track' end,
               (array['Page Viewed', 'Product Viewed', 'Article Read', 'Product Added', 'Checkout Started'])[1 + n % 5],
               t, t + interval '2 seconds',
               jsonb_build_object('path', '/p/' || (n % 500), 'category', (array['shoes', 'bags', 'hats'])[1 + n % 3], 'price', (n % 100) + 0.99),
               jsonb_build_object('page', jsonb_build_object('path', '/p/' || (n % 500), 'title', 'Product ' || (n % 500)),
                                  'userAgent', jsonb_build_object('browser', 'Chrome', 'os', 'Windows', 'mobile', false),
                                  'ipPrefix', '203.0.113.0', 'locale', 'pl-PL', 'timezone', 'Europe/Warsaw')
             from (select p.id, p.idx, n, $2::timestamptz + random() * ($3::timestamptz - $2::timestamptz) as t
                   from people p cross join lateral generate_series(1, p.events) n where n % ${MONTHS} = ${m}) s
             order by t`,
            [sourceId, from, to],
          );
        }
        times['events (4 statements, one a month, in time order)'] = seconds(started);
        say(`  events: ${seconds(started).toFixed(1)} s`);
      })(),
      timed('event receipts (keyed hashes computed here, inserted in pages of 50,000)', () => fillReceipts(receiptClient, people, sourceId, services.keys.pseudonym)),
    ]);
    await eventsAndReceipts;
    const noticeHash = Buffer.alloc(32, 7);
    await timed('consent, segments, decisions, journeys, sends, outbox', async () => {
      await q(
        `insert into app.consent_ledger (profile_id, purpose, decision, occurred_at, recorded_at, source_kind, source_id, method, notice_id, notice_version, notice_hash, ip_prefix, event_message_id)
         select p.id, (array['analytics', 'profiling', 'email_marketing'])[1 + k % 3], case when k % 7 = 6 then 'withdrawn' else 'granted' end,
           now() - ((200 - k) || ' hours')::interval, now() - ((200 - k) || ' hours')::interval, 'write_key', $1, 'banner', 'cookie_banner', 1, $2, '203.0.113.0',
           'm-' || p.idx || '-' || k
         from people p cross join lateral generate_series(1, case when p.kind in ('heavy', 'twin', 'probe') then 60 else 3 end) k`,
        [sourceId, noticeHash],
      );
      await q(
        `insert into app.segment_state (profile_id, segment_id, member, changed_at, recheck_at)
         select p.id, 'segment_' || k, k % 4 <> 0, now() - interval '3 days', case when k = 1 then now() + interval '1 day' end
         from people p cross join lateral generate_series(1, case when p.kind in ('heavy', 'twin', 'probe') then 20 else 3 end) k`,
      );
      await q(
        `insert into app.decisions (profile_id, action, allowed, reason, purposes, missing, ref, decided_at, rule_id, rule_version, outcome)
         select p.id, 'enrol:campaign_' || (k % 10), k % 3 <> 0, case when k % 3 = 0 then 'no consent' else 'conditions met' end,
           array['email_marketing'], case when k % 3 = 0 then array['email_marketing'] else '{}'::text[] end,
           jsonb_build_object('event', 'Product Viewed'), now() - (k || ' minutes')::interval, 'campaign_' || (k % 10), 'v1',
           case when k % 3 = 0 then 'skipped' else 'enrolled' end
         from people p cross join lateral generate_series(1, case when p.kind in ('heavy', 'twin', 'probe') then 300 else 2 end) k`,
      );
      // Journeys: the heavy people 5, one small person in four 1, one other person in ten 1.
      await q(
        `insert into app.enrolments (id, campaign_id, profile_id, entry, campaign_version, rule_set_version, state, journey, started_at, wake_at)
         select gen_random_uuid(), 'campaign_' || k, p.id, 1, 'v1', repeat('a', 64), 'active', '{"step": 2}', now() - interval '2 days',
           date_trunc('second', now()) + interval '1 day'
         from people p cross join lateral generate_series(1, case when p.kind in ('heavy', 'twin', 'probe') then 5
           when p.kind = 'small' and p.idx % 4 = 0 then 1 when p.kind = 'background' and p.idx % 10 = 0 then 1 else 0 end) k`,
      );
      await q(
        `insert into app.scheduled_sends (enrolment_id, profile_id, campaign_id, step_id, template, due_at, state, sent_at, message_id, attempts, created_at)
         select e.id, e.profile_id, e.campaign_id, s.step, 'offer', case when s.step = 's1' then now() - interval '1 day' else date_trunc('second', now()) + interval '1 day' end,
           case when s.step = 's1' then 'sent' else 'scheduled' end, case when s.step = 's1' then now() - interval '1 day' end,
           case when s.step = 's1' then '<' || gen_random_uuid() || '@bench.example.com>' end, case when s.step = 's1' then 1 else 0 end, now() - interval '2 days'
         from app.enrolments e cross join (values ('s1'), ('s2')) s(step)`,
      );
      await q(
        `insert into app.outbox (queue, job_name, job_id, payload, run_at, created_at, relayed_at)
         select 'email', 'send', 'send-' || id, jsonb_build_object('sendId', id), due_at, now() - interval '2 hours', now() - interval '2 hours'
         from app.scheduled_sends where state = 'scheduled'`,
      );
      await q(
        `insert into app.consent_confirmations (id, profile_id, purposes, notice_id, notice_version, notice_hash, source_id, ip_prefix, event_message_id, requested_at, expires_at, email_sent_at, confirmed_at)
         select gen_random_uuid(), p.id, array['email_marketing'], 'newsletter', 1, $2, $1, '203.0.113.0', 'm-' || p.idx || '-1',
           now() - interval '10 days', now() + interval '20 days', now() - interval '10 days', now() - interval '9 days'
         from people p where p.kind <> 'background'`,
        [sourceId, noticeHash],
      );
    });
    await timed('vacuum analyze', () => q('vacuum analyze'));
    const count = async (table: string) => Number((await q(`select count(*)::text as n from ${table}`)).rows[0]?.n ?? 0);
    const rows: Record<string, number> = {};
    for (const table of ['app.events', 'app.event_receipts', 'app.profiles', 'app.consent_ledger', 'app.segment_state', 'app.decisions', 'app.enrolments', 'app.scheduled_sends', 'app.outbox', 'vault.identities', 'vault.profile_merges']) {
      rows[table] = await count(table);
    }
    const partitions = Number((await q(`select count(*)::text as n from pg_inherits where inhparent = 'app.events'::regclass`)).rows[0]?.n ?? 0);
    const size = await q(
      `select pg_size_pretty(pg_database_size(current_database())) as db,
              pg_size_pretty((select sum(pg_total_relation_size(inhrelid)) from pg_inherits where inhparent = 'app.events'::regclass)) as events`,
    );
    const sizes = `database ${size.rows[0]?.db}, app.events with its indexes ${size.rows[0]?.events}`;
    return { fill: { events: rows['app.events'] ?? 0, partitions, seconds: times, sizes, rows }, sourceId };
  } finally {
    await sqlClient.end();
    await receiptClient.end();
  }
}

// ── Redis ───────────────────────────────────────────────────────────────────────────────────────

interface RedisFill {
  readonly eventJobs: number;
  readonly events: number;
  readonly erasedEventsQueued: number;
  readonly delayedSends: number;
  readonly wakeUps: number;
  /** The batch (index) each erased person's queued event was put in, by user id. */
  readonly batchOf: ReadonlyMap<string, number>;
}

async function fillRedis(services: Services, people: readonly Person[], sourceId: string): Promise<RedisFill> {
  const { queues } = services;
  const db = services.databases.db;
  const now = new Date().toISOString();
  const visitorEvent = (job: number, i: number): AcceptedEvent => ({
    sourceId,
    messageId: `queued-${job}-${i}`,
    receivedAt: now,
    occurredAt: now,
    ipPrefix: '198.51.100.0',
    signals: { gpc: false, dnt: false },
    event: { type: 'track', event: 'Page Viewed', anonymousId: `queued-visitor-${job}-${i}`, properties: { path: `/q/${i}` }, context: { page: { path: `/q/${i}` } } },
  });
  const jobs = Array.from({ length: EVENT_JOBS }, (_, j) => Array.from({ length: EVENTS_PER_JOB }, (_, i) => visitorEvent(j, i)));
  // The erased people's own events still waiting: one each for the heavy, and every other small one.
  const erasedQueued = people.filter((p) => p.kind === 'heavy' || (p.kind === 'small' && p.idx % 2 === 0));
  // Five people a batch, in the order they are erased: erasures running at once meet in the same jobs.
  const batchOf = new Map<string, number>();
  erasedQueued.forEach((p, i) => {
    batchOf.set(p.userId, Math.floor(i / 5) % jobs.length);
    const job = jobs[Math.floor(i / 5) % jobs.length] as AcceptedEvent[];
    job.push({ ...visitorEvent(-1, p.idx), messageId: `queued-own-${p.idx}`, event: { type: 'track', event: 'Product Viewed', userId: p.userId, properties: { sku: 'x' } } });
  });
  // Delayed, as batches waiting for a retry are: step 4 searches those (and failed ones), while a
  // batch merely waiting for the worker is left to the tombstones (docs/erasure.md).
  for (const chunk of chunks(jobs, 50)) await queues.enqueueBulk('events', 'ingest', chunk.map((events) => ({ payload: { events }, options: { delayMs: 86_400_000 } })));

  // Delayed jobs the outbox relay would have put there: the erased people's, and some others'.
  const erased = people.filter((p) => p.kind === 'heavy' || p.kind === 'small').map((p) => p.id);
  const others = people.filter((p) => p.kind === 'background').map((p) => p.id);
  const scheduled = (ids: string[], limit: number) =>
    sql<{ id: string; due_at: Date }>`select id, due_at from app.scheduled_sends where state = 'scheduled' and profile_id = any(${ids}::uuid[]) order by id limit ${limit}`.execute(db);
  const sends = [...(await scheduled(erased, 1_000_000)).rows, ...(await scheduled(others, OTHER_SENDS)).rows];
  for (const chunk of chunks(sends, 500)) {
    await queues.enqueueBulk('email', 'send', chunk.map((s) => ({ payload: { sendId: s.id }, options: { jobId: `send-${s.id}`, delayMs: s.due_at.getTime() - Date.now() } })));
  }
  const wakes = (await sql<{ id: string; wake_at: Date | null }>`select id, wake_at from app.enrolments where profile_id = any(${erased}::uuid[])`.execute(db)).rows;
  for (const chunk of chunks(wakes, 500)) {
    await queues.enqueueBulk(
      'journeys',
      'wake',
      chunk.map((e) => {
        const wakeAt = e.wake_at as Date;
        return { payload: { enrolmentId: e.id, wakeAt: wakeAt.toISOString() }, options: { jobId: `wake-${e.id}-${wakeAt.getTime()}`, delayMs: wakeAt.getTime() - Date.now() } };
      }),
    );
  }
  return { eventJobs: EVENT_JOBS, events: EVENT_JOBS * EVENTS_PER_JOB, erasedEventsQueued: erasedQueued.length, delayedSends: sends.length, wakeUps: wakes.length, batchOf };
}

/** Events of these user ids still in the events queue's batches (after the erasures: should be none). */
async function queuedEventsOf(services: Services, userIds: ReadonlySet<string>): Promise<{ events: number; jobs: number; userIds: string[] }> {
  const key = engine.sealing.queueSealingKey(services.keys.master);
  const queue = services.queues.queue('events');
  let events = 0;
  let jobs = 0;
  const left: string[] = [];
  for (let start = 0; ; start += 500) {
    const page = await queue.getJobs(['wait', 'delayed', 'failed', 'prioritized'], start, start + 499, true);
    if (page.length === 0) break;
    for (const job of page) {
      if (!job) continue;
      jobs++;
      const data = engine.sealing.unseal(key, `events/${job.name}`, job.data) as { events: AcceptedEvent[] };
      for (const e of data.events) {
        if (typeof e.event.userId === 'string' && userIds.has(e.event.userId)) {
          events++;
          left.push(e.event.userId);
        }
      }
    }
  }
  return { events, jobs, userIds: left };
}

async function redisShape(services: Services, redis: Redis): Promise<string> {
  const parts: string[] = [];
  for (const name of ['events', 'email', 'journeys'] as const) {
    const queue = services.queues.queue(name);
    const counts = await queue.getJobCounts('wait', 'delayed', 'failed', 'completed');
    const stream = await redis.xlen(queue.keys.events as string);
    parts.push(`${name}: ${counts.wait ?? 0} waiting, ${counts.delayed ?? 0} delayed, ${counts.failed ?? 0} failed, event stream ${fmt(stream)} entries`);
  }
  return parts.join('; ');
}

// ── measuring ───────────────────────────────────────────────────────────────────────────────────

interface Timed {
  /** performance.now() at the start and the end of runErasure. */
  readonly startedAt: number;
  readonly endedAt: number;
  readonly totalMs: number;
  /** Per step 1..8, ms (the bench's own callback excluded). */
  readonly stepsMs: number[];
  readonly work: ErasureWork | undefined;
  readonly clean: boolean;
  readonly removed: Record<string, number>;
}

/** runErasure with each step timed through afterStep; `capture` reads the work kept after step 3. */
async function timedErasure(services: Services, requestId: string, capture: boolean): Promise<Timed> {
  const stepsMs = new Array<number>(8).fill(0);
  let work: ErasureWork | undefined;
  let paused = 0;
  const started = performance.now();
  let last = started;
  const outcome = await engine.run.runErasure(services, requestId, {
    afterStep: async (step) => {
      const at = performance.now();
      stepsMs[step - 1] = (stepsMs[step - 1] ?? 0) + (at - last);
      if (capture && step === 3) {
        const row = await services.databases.db.selectFrom('app.erasure_requests').select('work').where('id', '=', requestId).executeTakeFirstOrThrow();
        work = row.work as ErasureWork;
      }
      last = performance.now();
      paused += last - at;
    },
  });
  const ended = performance.now();
  stepsMs[7] = ended - last;
  if (outcome.outcome !== 'completed') throw new Error(`erasure ${requestId}: ${outcome.outcome}`);
  return { startedAt: started, endedAt: ended, totalMs: ended - started - paused, stepsMs, work, clean: outcome.receipt.verification.clean, removed: { ...outcome.receipt.removed } };
}

/**
 * Erasures as the erasure worker runs them (workers/erasure.ts): through the grouper, each group's
 * steps timed once, and each request's time from its submission to its receipt (its wait for the
 * group before included).
 */
function groupedErasures(services: Services): { run(id: string): Promise<Timed>; readonly sizes: number[] } {
  const sizes: number[] = [];
  const stepsOf = new Map<string, number[]>();
  const grouper = engine.grouper.createErasureGrouper(async (ids) => {
    sizes.push(ids.length);
    const stepsMs = new Array<number>(8).fill(0);
    let last = performance.now();
    const settled = await engine.group.runErasureGroup(services, ids, {
      afterStep: (step) => {
        const at = performance.now();
        stepsMs[step - 1] = (stepsMs[step - 1] ?? 0) + (at - last);
        last = at;
      },
    });
    stepsMs[7] = performance.now() - last;
    for (const id of ids) stepsOf.set(id, stepsMs);
    return settled;
  }, 50);
  return {
    sizes,
    async run(id) {
      const started = performance.now();
      const outcome = await grouper.run(id);
      const ended = performance.now();
      if (outcome.outcome !== 'completed') throw new Error(`erasure ${id}: ${outcome.outcome}`);
      return { startedAt: started, endedAt: ended, totalMs: ended - started, stepsMs: stepsOf.get(id) ?? [], work: undefined, clean: outcome.receipt.verification.clean, removed: { ...outcome.receipt.removed } };
    },
  };
}

async function request(services: Services, email: string): Promise<string> {
  const created = await engine.request.createErasureRequest(services.databases, services.config, services.keys, {
    identifier: { email },
    origin: 'cli',
    requestedBy: 'bench:erasure',
  });
  if (!created.ok) throw new Error(created.error);
  return created.id;
}

interface Floor {
  readonly totalMs: number;
  readonly eventsMs: number;
  readonly events: number;
  /** ms per part: the select of messageIds, hashing them, the receipts, the events, the other tables, the vault, commit. */
  readonly parts: Record<string, number>;
}

interface Queryable {
  query<R>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * `work` on one connection of the engine's pool, as warm as the erasure's: a new backend pays about
 * 80 ms more for its first touch of a heavy person's 10,000 events (shared memory is mapped into it
 * page by page; huge pages are off here), which would be measured instead of the statements.
 */
function pooled<T>(services: Services, work: (client: Queryable) => Promise<T>): Promise<T> {
  return services.databases.db.connection().execute((conn) =>
    work({ query: async <R>(text: string, values: unknown[] = []) => ({ rows: (await conn.executeQuery<R>(CompiledQuery.raw(text, values))).rows as R[] }) }),
  );
}

/**
 * The floor: a twin's rows deleted by plain SQL in one transaction, nothing verified, Redis untouched,
 * on a connection of the engine's pool.
 */
async function rawErasure(services: Services, person: Person, pseudonym: Buffer, sourceId: string): Promise<Floor> {
  const parts: Record<string, number> = {};
  let mark = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    parts[name] = (parts[name] ?? 0) + (now - mark);
    mark = now;
  };
  return services.databases.db.connection().execute(async (conn) => {
    const q = <R>(text: string, values: unknown[] = []) => conn.executeQuery<R>(CompiledQuery.raw(text, values));
    const ids = [person.id, ...(person.loserId ? [person.loserId] : [])];
    const started = performance.now();
    mark = started;
    await q('begin');
    try {
      await q(`set local consentflow.erasure = 'on'`);
      const messages = await q<{ message_id: string }>('select message_id from app.events where profile_id = any($1::uuid[])', [ids]);
      lap('select messageIds');
      const hashed = messages.rows.map((r) => engine.rows.receiptMessageId(pseudonym, r.message_id));
      lap('hash them');
      // In pages, as purge-app.ts does: with all 10,000 at once the planner hashes them and reads the whole table.
      for (let i = 0; i < hashed.length; i += 1_000) {
        await q('delete from app.event_receipts r using unnest($2::text[]) as t(message_id) where r.source_id = $1 and r.message_id = t.message_id', [sourceId, hashed.slice(i, i + 1_000)]);
      }
      lap('delete receipts');
      const deleted = await q('delete from app.events where profile_id = any($1::uuid[])', [ids]);
      lap('delete events');
      for (const table of ['app.decisions', 'app.consent_ledger', 'app.consent_confirmations', 'app.segment_state', 'app.scheduled_sends', 'app.enrolments']) {
        await q(`delete from ${table} where profile_id = any($1::uuid[])`, [ids]);
      }
      await q('delete from app.profiles where id = any($1::uuid[])', [ids]);
      lap('other app tables');
      await q('delete from vault.subject_keys where profile_id = any($1::uuid[])', [ids]);
      await q('delete from vault.profile_merges where loser_id = any($1::uuid[]) or winner_id = any($1::uuid[])', [ids]);
      lap('vault');
      await q('commit');
      lap('commit');
      return { totalMs: performance.now() - started, eventsMs: parts['delete events'] ?? 0, events: Number(deleted.numAffectedRows ?? 0), parts };
    } catch (err) {
      await q('rollback');
      throw err;
    }
  });
}

interface ColumnTiming {
  readonly where: string;
  readonly ms: number;
  readonly sql: string;
  readonly values: unknown[];
}

/** verify.ts's statements one by one on a heavy person's work, timed: which columns the check spends on. */
async function verifyColumns(services: Services, work: ErasureWork): Promise<ColumnTiming[]> {
  return pooled(services, async (client) => {
    const uuids = engine.verify.uuidsOf(work);
    const hashes = work.identities.map((i) => Buffer.from(i.hash, 'hex'));
    const jobIds = work.jobs.map((j) => j.id);
    const out: ColumnTiming[] = [];
    for (const schema of ['app', 'vault'] as const) {
      for (const c of await engine.columns.personColumns(services.databases.db as unknown as Kysely<unknown>, schema)) {
        const values = c.kind === 'uuid' ? uuids : c.kind === 'hash' ? hashes : jobIds;
        if (values.length === 0) continue;
        const cast = c.kind === 'uuid' ? 'uuid[]' : c.kind === 'hash' ? 'bytea[]' : 'text[]';
        const sql = `select count(*) from ${schema}.${c.table} where ${c.column} = any($1::${cast})`;
        let best = Infinity;
        for (let i = 0; i < 3; i++) {
          const started = performance.now();
          await client.query(sql, [values]);
          best = Math.min(best, performance.now() - started);
        }
        out.push({ where: `${schema}.${c.table}.${c.column}`, ms: best, sql, values: [values] });
      }
    }
    return out.sort((a, b) => b.ms - a.ms);
  });
}

async function explain(services: Services, timing: ColumnTiming): Promise<string> {
  return pooled(services, async (client) => {
    const plan = await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${timing.sql}`, timing.values);
    return plan.rows.map((r) => r['QUERY PLAN']).join('\n');
  });
}

interface EnginePlan {
  readonly what: string;
  readonly executionMs: number;
  readonly plan: string;
}

/**
 * EXPLAIN ANALYZE of the engine's statements that grow with a table rather than with the person,
 * or that weigh most, run on the probe (a heavy person nobody erases) in transactions rolled back.
 */
async function explainEngine(services: Services, probe: Person, pseudonym: Buffer): Promise<EnginePlan[]> {
  return pooled(services, async (client) => explainOn(client, probe, pseudonym));
}

async function explainOn(client: Queryable, probe: Person, pseudonym: Buffer): Promise<EnginePlan[]> {
  const ids = [probe.id, probe.loserId as string];
  const statements: Array<{ what: string; sql: string; values: unknown[] }> = [];
  const receipts = await client.query<{ source_id: string; message_id: string }>('select source_id, message_id from app.events where profile_id = any($1::uuid[]) limit 1000', [ids]);
  statements.push(
    { what: 'step 1 (resolve-step.ts): merged profiles by winner', sql: 'select loser_id from vault.profile_merges where winner_id in ($1)', values: [probe.id] },
    { what: 'step 2 (resolve-step.ts): the merges of the person', sql: 'delete from vault.profile_merges where (loser_id in ($1, $2) or winner_id in ($1, $2))', values: ids },
    {
      what: 'step 3 (purge-app.ts): a page of 1,000 receipts',
      sql: `with gone as (delete from app.event_receipts r using unnest($1::uuid[], $2::text[]) as t(source_id, message_id)
            where r.source_id = t.source_id and r.message_id = t.message_id returning 1) select count(*) from gone`,
      values: [receipts.rows.map((r) => r.source_id), receipts.rows.map((r) => engine.rows.receiptMessageId(pseudonym, r.message_id))],
    },
    { what: 'step 3 (purge-app.ts): the events', sql: 'delete from app.events where profile_id in ($1, $2)', values: ids },
  );
  const out: EnginePlan[] = [];
  for (const st of statements) {
    await client.query('begin');
    await client.query(`set local consentflow.erasure = 'on'`);
    const plan = (await client.query<{ 'QUERY PLAN': string }>(`explain (analyze, buffers, costs off) ${st.sql}`, st.values)).rows.map((r) => r['QUERY PLAN']).join('\n');
    await client.query('rollback');
    out.push({ what: st.what, executionMs: Number(/Execution Time: ([\d.]+)/.exec(plan)?.[1] ?? NaN), plan: `${st.sql}\n${plan}` });
  }
  return out;
}

/** Runs `work` over the items `concurrency` at a time; none is started after `budgetMs`. */
async function pool<T>(items: readonly T[], concurrency: number, budgetMs: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const deadline = performance.now() + budgetMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length && performance.now() < deadline) await work(items[next++] as T);
    }),
  );
}

/**
 * Where step 4's time goes for nobody, with the same calls purge-redis.ts makes: reading every job
 * of every queue in pages, opening the sealed batches, the blind indexes of every queued event,
 * the other payloads searched for uuids, and every queue's event stream read.
 */
async function scanParts(services: Services, redis: Redis): Promise<Record<string, number>> {
  const parts: Record<string, number> = {};
  let mark = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    parts[name] = (parts[name] ?? 0) + (now - mark);
    mark = now;
  };
  const sealingKey = engine.sealing.queueSealingKey(services.keys.master);
  const names = ['events', 'journeys', 'broadcasts', 'email', 'erasure'] as const;
  const states = ['wait', 'delayed', 'prioritized', 'failed', 'completed', 'waiting-children'] as const;
  const found: Array<{ queue: string; name: string; data: unknown }> = [];
  for (const name of names) {
    for (let start = 0; ; start += 500) {
      const page = await services.queues.queue(name).getJobs([...states], start, start + 499, true);
      if (page.length === 0) break;
      for (const job of page) if (job) found.push({ queue: name, name: job.name, data: job.data });
    }
  }
  lap(`read ${fmt(found.length)} jobs (getJobs, pages of 500)`);
  const batches = found.filter((j) => j.queue === 'events').map((j) => engine.sealing.unseal(sealingKey, `events/${j.name}`, j.data) as { events: AcceptedEvent[] });
  lap(`open ${fmt(batches.length)} sealed batches`);
  let events = 0;
  for (const b of batches) {
    for (const e of b.events) {
      engine.keys.eventIdentityKeys(services.keys.pseudonym, e.event as unknown as Record<string, unknown>);
      events++;
    }
  }
  lap(`blind indexes of ${fmt(events)} queued events`);
  for (const j of found.filter((f) => f.queue !== 'events')) [...JSON.stringify(j.data).matchAll(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi)];
  lap('other payloads searched for uuids');
  let entries = 0;
  for (const name of names) {
    const key = services.queues.queue(name).keys.events as string;
    for (let from = '-'; ; ) {
      const page = await redis.xrange(key, from, '+', 'COUNT', '1000');
      entries += page.length;
      if (page.length < 1000) break;
      from = `(${page[page.length - 1]?.[0]}`;
    }
  }
  lap(`read ${fmt(entries)} event stream entries`);
  return parts;
}

// ── ingest while erasing ────────────────────────────────────────────────────────────────────────

interface IngestWindow {
  readonly label: string;
  readonly erasing: boolean;
  readonly seconds: number;
  /** Batched POST: events a second accepted (2xx), as bench:ingest counts them. */
  readonly accepted: number;
  readonly p99: number;
  readonly non2xx: number;
  readonly errors: number;
  /** Events a second the events worker processed (receipts written) over the same window. */
  readonly stored: number;
  readonly cpu: CpuWindow | undefined;
}

interface IngestRun {
  readonly windows: readonly IngestWindow[];
  /** The means of the windows without erasures, and of those with them. */
  readonly baseline: { readonly accepted: number; readonly stored: number };
  readonly during: { readonly accepted: number; readonly stored: number };
  /** Fractions: (baseline − during) / baseline. */
  readonly acceptedDrop: number;
  readonly storedDrop: number;
  readonly queued: { readonly heavy: number; readonly small: number };
  /** Completed by the erasure worker inside the windows with erasures. */
  readonly inWindows: { readonly heavy: number; readonly small: number };
  readonly erasingSeconds: number;
  /** The worker finished every queued request: erasures then ran for part of the windows only. */
  readonly ranOut: boolean;
  /** The window's requests the worker had not finished when it stopped, run afterwards in this process (not measured). */
  readonly leftovers: number;
  readonly erased: Person[];
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Ingest with and without erasures, the same load: the API and one events worker process, autocannon
 * posting batches of 50 events with 50 connections (as bench:ingest), in three windows: without
 * erasures, while one erasure worker process (`consentflow worker --queues erasure`, as production
 * runs it) works through queued requests of heavy and small people, and without again. The baseline
 * is the mean of the windows before and after, so a drift (the database and the backlog grow) does
 * not count as the erasures' doing.
 */
async function ingestWhileErasing(services: Services, bench: BenchDatabase, windowPeople: readonly Person[], smallRate: number): Promise<IngestRun> {
  const env = bench.env({ LOG_LEVEL: 'info' });
  const db = services.databases.db;
  const children: ChildProcess[] = [];
  const port = await freePort();
  const redisPid = Number(/process_id:(\d+)/.exec(await services.redis.info('server'))?.[1] ?? NaN);
  const backends = async () => (await bench.admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [bench.name])).rows.map((r) => r.pid);
  let eraser: ChildProcess | undefined;
  try {
    const source = JSON.parse(await runNode(['bin/consentflow.js', 'sources', 'add', 'bench ingest', '--json'], env)) as { id: string; writeKey: string };
    const api = await startProcess(process.execPath, ['bin/consentflow.js', 'api'], { ...env, HTTP_PORT: String(port) }, 'API listening');
    children.push(api);
    const worker = await startProcess(process.execPath, ['bin/consentflow.js', 'worker', '--queues', 'events'], env, 'workers started');
    children.push(worker);
    const auth = `Basic ${Buffer.from(`${source.writeKey}:`).toString('base64')}`;
    // As in bench:ingest: the visitors accept the cookie banner, so their events are stored as theirs and run the rules.
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/consent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body: JSON.stringify({ anonymousId: `visitor-${i}`, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 1 }, method: 'banner' }),
      });
      if (res.status !== 200) throw new Error(`consent for visitor-${i}: ${res.status} ${await res.text()}`);
    }
    const body = JSON.stringify({
      batch: Array.from({ length: INGEST_BATCH }, (_, i) => ({
        type: 'track',
        event: 'Product Viewed',
        anonymousId: `visitor-${i % 7}`,
        properties: { product_id: `p-${i}`, price: 19.99 },
        timestamp: new Date().toISOString(),
      })),
    });
    const load = (seconds: number) =>
      autocannon({
        url: `http://127.0.0.1:${port}/v1/batch`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body,
        connections: INGEST_CONNECTIONS,
        pipelining: 1,
        duration: seconds,
      });
    const receipts = async () =>
      Number((await sql<{ n: string }>`select count(*)::text as n from app.event_receipts where source_id = ${source.id}`.execute(db)).rows[0]?.n ?? 0);
    const groups = {
      'load generator (this process)': () => [process.pid],
      api: () => (api.pid ? [api.pid] : []),
      'events worker': () => (worker.pid ? [worker.pid] : []),
      'erasure worker': () => (eraser?.pid ? [eraser.pid] : []),
      PostgreSQL: backends,
      Redis: () => (Number.isFinite(redisPid) ? [redisPid] : []),
    };
    const measure = async (label: string, erasing: boolean): Promise<IngestWindow> => {
      const before = await receipts();
      const endCpu = await startCpuWindow(groups);
      const started = performance.now();
      const result = await load(WINDOW_S);
      const seconds = (performance.now() - started) / 1_000;
      const cpu = await endCpu();
      const stored = (await receipts()) - before;
      const window: IngestWindow = {
        label,
        erasing,
        seconds,
        accepted: result.requests.average * INGEST_BATCH,
        p99: result.latency.p99,
        non2xx: result.non2xx,
        errors: result.errors + result.timeouts,
        stored: stored / seconds,
        cpu,
      };
      say(`ingest, ${label}: ${fmt(window.accepted)} events/s accepted (p99 ${window.p99} ms, ${window.non2xx} non-2xx), ${fmt(window.stored)} events/s stored`);
      return window;
    };
    // A short warm-up: the worker then has a backlog from the first window on, as it has in every window.
    await load(quick ? 1 : 2);

    // The requests the erasure worker will run, queued before the window: heavy people spread among the small ones.
    const erasing = Math.floor(WINDOWS / 2);
    const smallQueued = windowPeople.filter((p) => p.kind === 'small').slice(0, Math.max(20, Math.ceil(smallRate * WINDOW_S * erasing)));
    const heavyQueued = windowPeople.filter((p) => p.kind === 'heavy');
    const order: Person[] = [...smallQueued];
    heavyQueued.forEach((p, k) => order.splice(Math.min(order.length, 1 + k * HEAVY_EVERY), 0, p));
    const requestOf = new Map<string, Person>();
    for (const person of order) requestOf.set(await request(services, person.email), person);
    while ((await engine.outbox.relayOutbox(db, services.queues)) > 0);

    const windows: IngestWindow[] = [];
    const spans: Array<{ from: number; to: number }> = [];
    for (let w = 0; w < WINDOWS; w++) {
      if (w % 2 === 0) {
        windows.push(await measure(`without erasures (${w / 2 + 1})`, false));
        continue;
      }
      eraser = await startProcess(process.execPath, ['bin/consentflow.js', 'worker', '--queues', 'erasure'], env, 'workers started');
      const from = Date.now();
      windows.push(await measure(`while erasures run (${(w + 1) / 2})`, true));
      spans.push({ from, to: Date.now() });
      await stopProcess(eraser);
      eraser = undefined;
    }
    for (const child of children.splice(0)) await stopProcess(child);

    const done = await sql<{ id: string; completed_at: Date | null }>`
      select id, completed_at from app.erasure_requests where id = any(${[...requestOf.keys()]}::uuid[])`.execute(db);
    const inWindows = { heavy: 0, small: 0 };
    const pending: Array<{ person: Person; id: string }> = [];
    for (const row of done.rows) {
      const person = requestOf.get(row.id) as Person;
      const at = row.completed_at?.getTime();
      if (at === undefined) pending.push({ person, id: row.id });
      else if (spans.some((span) => at >= span.from && at <= span.to)) inWindows[person.kind === 'heavy' ? 'heavy' : 'small']++;
    }
    // What the worker left is run here, so that every queued person ends erased and checked with the others.
    await pool(pending, CONCURRENCY, Number.POSITIVE_INFINITY, async ({ id }) => {
      await timedErasure(services, id, false);
    });
    // The ingest backlog the worker did not reach (batches waiting for it) goes; the delayed batches of the fill stay.
    await services.queues.queue('events').drain(false);
    const mean = (ws: IngestWindow[], key: 'accepted' | 'stored') => ws.reduce((a, w) => a + w[key], 0) / Math.max(1, ws.length);
    const without = windows.filter((w) => !w.erasing);
    const withErasures = windows.filter((w) => w.erasing);
    const baseline = { accepted: mean(without, 'accepted'), stored: mean(without, 'stored') };
    const during = { accepted: mean(withErasures, 'accepted'), stored: mean(withErasures, 'stored') };
    return {
      windows,
      baseline,
      during,
      acceptedDrop: baseline.accepted > 0 ? (baseline.accepted - during.accepted) / baseline.accepted : 0,
      storedDrop: baseline.stored > 0 ? (baseline.stored - during.stored) / baseline.stored : 0,
      queued: { heavy: heavyQueued.length, small: smallQueued.length },
      inWindows,
      erasingSeconds: withErasures.reduce((a, w) => a + w.seconds, 0),
      ranOut: pending.length === 0,
      leftovers: pending.length,
      erased: order,
    };
  } finally {
    if (eraser) await stopProcess(eraser).catch(() => undefined);
    for (const child of children) await stopProcess(child).catch(() => undefined);
  }
}

// ── main ────────────────────────────────────────────────────────────────────────────────────────

interface Results {
  readonly fill: Fill;
  readonly redisFill: RedisFill;
  readonly redisBefore: string;
  readonly heavy: Timed[];
  readonly heavyCreateMs: number[];
  readonly reverify: number[];
  readonly floor: Floor[];
  readonly columns: ColumnTiming[];
  readonly plans: string[];
  readonly enginePlans: EnginePlan[];
  readonly scanMs: number[];
  readonly scanShape: string;
  readonly scan: Record<string, number>;
  readonly heavyCpu: CpuWindow | undefined;
  readonly small: Timed[];
  readonly smallPlanned: number;
  readonly expectedEvents: number;
  readonly smallCreateSeconds: number;
  readonly smallSeconds: number;
  readonly smallCpu: CpuWindow | undefined;
  readonly ingest: IngestRun;
  readonly left: { events: number; jobs: number; userIds: string[] };
  /** For each erased person whose queued event is still in Redis: the people of the same batch erased at the same time. */
  readonly leftWhy: string[];
  readonly eventsAfter: number;
  readonly findable: number;
  readonly totalSeconds: number;
  /** Server versions and the PostgreSQL settings that matter here. */
  readonly settings: string;
}

async function main(): Promise<void> {
  const began = performance.now();
  const bench = await createBenchDatabase();
  const env = bench.env({ LOG_LEVEL: 'warn' });
  const config = engine.config.loadConfig(env, ROOT);
  const log = engine.logger.createLogger({ level: 'warn', fd: 2 });
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  let services: Services | undefined;
  try {
    services = await engine.services.openServices({ config, keys: engine.config.loadKeys(config, log), log, searchPath: process.env.PATH ?? '' });
    if (config.privacy.erasure.webhooks.length > 0) throw new Error('ERASURE_WEBHOOKS is set: the bench measures no processor');
    const people = population();
    say(`filling ${bench.name}: ${PROFILES.toLocaleString('en')} people, ≥ ${TARGET_EVENTS.toLocaleString('en')} events`);
    const { fill, sourceId } = await fillDatabase(services, bench.url, people);
    say(`  ${fmt(fill.events)} events in ${fill.partitions} partitions; ${fill.sizes}`);
    const redisFill = await fillRedis(services, people, sourceId);
    const redisBefore = await redisShape(services, redis);
    say(`redis: ${redisBefore}`);

    const heavy = people.filter((p) => p.kind === 'heavy' && !p.window);
    const twins = people.filter((p) => p.kind === 'twin');
    const small = people.filter((p) => p.kind === 'small' && !p.window);
    // The person is found by email through the normal path (the blind index in vault.identities).
    const found = await engine.lookup.findProfileId(services.databases.vaultDb, services.keys, [{ email: (heavy[0] as Person).email }]);
    if (found !== (heavy[0] as Person).id) throw new Error('the first heavy person is not found by email');

    const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? NaN);
    const backends = async () => (await bench.admin.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [bench.name])).rows.map((r) => r.pid);
    const cpuWindow = () => startCpuWindow({ bench: () => [process.pid], postgres: backends, redis: () => (Number.isFinite(redisPid) ? [redisPid] : []) });

    // Heavy people, one at a time; a twin's raw SQL floor before every fourth, so both meet the same cache.
    const endHeavyCpu = await cpuWindow();
    const heavyRuns: Timed[] = [];
    const heavyCreateMs: number[] = [];
    const floor: Floor[] = [];
    const floorBefore = new Map(twins.map((t, k) => [Math.floor((k * heavy.length) / twins.length), t]));
    for (const [i, person] of heavy.entries()) {
      const twin = floorBefore.get(i);
      let floorRun: Floor | undefined;
      if (twin) floor.push((floorRun = await rawErasure(services, twin, services.keys.pseudonym, sourceId)));
      const created = performance.now();
      const id = await request(services, person.email);
      heavyCreateMs.push(performance.now() - created);
      const run = await timedErasure(services, id, true);
      heavyRuns.push(run);
      say(`heavy ${i + 1}/${heavy.length}: ${ms(run.totalMs)} ms (${run.stepsMs.map((s) => ms(s)).join(' / ')}), ${run.removed.events ?? 0} events, clean: ${run.clean}` + (floorRun ? `; raw SQL floor ${ms(floorRun.totalMs)} ms (${Object.entries(floorRun.parts).map(([k, v]) => `${k} ${ms(v)}`).join(', ')})` : ''));
    }
    const heavyCpu = await endHeavyCpu();
    // The by-index check again on each heavy person's work, alone (as step 7 runs it).
    const reverify: number[] = [];
    for (const run of heavyRuns) {
      if (!run.work) continue;
      const started = performance.now();
      const v = await engine.verify.verifyByIndex(services.databases, services.queues, run.work);
      reverify.push(performance.now() - started);
      if (!v.clean) throw new Error(`re-verification found remains: ${JSON.stringify(v.findings)}`);
    }
    const firstWork = heavyRuns[0]?.work;
    const columns = firstWork ? await verifyColumns(services, firstWork) : [];
    const plans: string[] = [];
    for (const c of columns.slice(0, 3)) plans.push(`${c.sql}\n${await explain(services, c)}`);
    const probe = people.find((p) => p.kind === 'probe') as Person;
    const enginePlans = await explainEngine(services, probe, services.keys.pseudonym);
    say(`engine statements on the probe (rolled back): ${enginePlans.map((p) => `${p.what} ${ms(p.executionMs)} ms`).join('; ')}`);
    say(`verify by column (best of 3, ms): ${columns.slice(0, 6).map((c) => `${c.where} ${ms(c.ms)}`).join(', ')}`);

    // What step 4 pays whatever the person: every job in Redis opened, every event stream read.
    const scanShape = await redisShape(services, redis);
    const scanMs: number[] = [];
    const sealingKey = engine.sealing.queueSealingKey(services.keys.master);
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await engine.purgeRedis.purgeRedis(services.queues, services.redis, sealingKey, services.keys.pseudonym, { jobs: [], identityIds: new Set(), uuids: new Set() });
      scanMs.push(performance.now() - started);
    }
    const scan = await scanParts(services, redis);
    say(`step 4's scan for nobody: ${scanMs.map((s) => ms(s)).join(', ')} ms (${scanShape}); its parts: ${Object.entries(scan).map(([k, v]) => `${k} ${ms(v)} ms`).join(', ')}`);

    // Small erasures: all requested first, then run CONCURRENCY at a time.
    const createStarted = performance.now();
    const requests: Array<{ person: Person; id: string }> = [];
    for (const person of small) requests.push({ person, id: await request(services, person.email) });
    const smallCreateSeconds = seconds(createStarted);
    const smallRuns: Timed[] = [];
    const smallErased: Person[] = [];
    const endSmallCpu = await cpuWindow();
    const profiler = profiling ? await startInspectorProfile() : undefined;
    const smallStarted = performance.now();
    const svc = services;
    const grouped = groupedErasures(svc);
    await pool(requests, CONCURRENCY, SMALL_BUDGET_S * 1_000, async ({ person, id }) => {
      smallRuns.push(await grouped.run(id));
      smallErased.push(person);
    });
    say(`small: groups of ${spread(grouped.sizes)} requests (p50 / p95 / max), ${grouped.sizes.length} groups`);
    const smallSeconds = seconds(smallStarted);
    const smallCpu = await endSmallCpu();
    if (profiler) {
      const file = await profiler.stop(path.join(os.tmpdir(), `erasure-small-${process.pid}.cpuprofile`));
      say(`${formatProfileSummary(summarizeProfile(file), smallRuns.length)}\nprofile kept at ${file} (per "msg" read: per small erasure)`);
    }
    say(`small: ${smallRuns.length} in ${smallSeconds.toFixed(1)} s = ${(smallRuns.length / smallSeconds).toFixed(1)}/s, ${CONCURRENCY} in flight`);

    // Ingest throughput without erasures and while the erasure worker runs (issue 9).
    const ingest = await ingestWhileErasing(services, bench, people.filter((p) => p.window), smallRuns.length / smallSeconds);

    // What is left: the erased people's events still queued in Redis batches, events in the table, look-ups by email.
    const erasedUserIds = new Set([...heavy, ...smallErased, ...ingest.erased].map((p) => p.userId));
    const left = await queuedEventsOf(services, erasedUserIds);
    // Whose erasure ran at the same time as theirs, with an event in the same batch (purge-redis.ts rewrites it).
    const runOf = new Map<string, Timed>([...heavy.map((p, i) => [p.userId, heavyRuns[i]] as const), ...smallErased.map((p, i) => [p.userId, smallRuns[i]] as const)].filter((e): e is [string, Timed] => e[1] !== undefined));
    const leftWhy = left.userIds.map((u) => {
      const mine = runOf.get(u);
      const batch = redisFill.batchOf.get(u);
      const mates = [...redisFill.batchOf.entries()]
        .filter(([other, b]) => other !== u && b === batch)
        .filter(([other]) => {
          const theirs = runOf.get(other);
          return mine && theirs && theirs.startedAt < mine.endedAt && mine.startedAt < theirs.endedAt;
        })
        .map(([other]) => other);
      return `${u} (batch ${batch}; erased at the same time as ${mates.length > 0 ? mates.join(', ') : 'nobody of that batch'})`;
    });
    if (left.events > 0) say(`erased people's events left in Redis: ${leftWhy.join('; ')}`);
    // The fill's events only: the ingest windows stored events of their own source.
    const eventsAfter = Number(
      (await services.databases.db.selectFrom('app.events').select((eb) => eb.fn.countAll<string>().as('n')).where('source_id', '=', sourceId).executeTakeFirstOrThrow()).n,
    );
    let findable = 0;
    const expectedEvents = fill.events - (heavy.length + twins.length) * HEAVY_EVENTS - smallErased.length * SMALL_EVENTS - ingest.erased.reduce((a, p) => a + p.events, 0);
    for (const person of [...heavy, ...twins, ...smallErased, ...ingest.erased]) {
      if (await engine.lookup.findProfileId(services.databases.vaultDb, services.keys, [{ email: person.email }])) findable++;
    }
    const setting = async (name: string) => (await bench.admin.query<Record<string, string>>(`show ${name}`)).rows[0]?.[name] ?? '?';
    const settings =
      `PostgreSQL ${(await setting('server_version')).split(' ')[0]} (shared_buffers ${await setting('shared_buffers')}, work_mem ${await setting('work_mem')}, jit ${await setting('jit')}), ` +
      `Redis ${/redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?'}, as installed on this machine`;
    report({
      settings,
      fill,
      redisFill,
      redisBefore,
      heavy: heavyRuns,
      heavyCreateMs,
      reverify,
      floor,
      columns,
      plans,
      enginePlans,
      scanMs,
      scanShape,
      scan,
      heavyCpu,
      small: smallRuns,
      smallPlanned: small.length,
      expectedEvents,
      smallCreateSeconds,
      smallSeconds,
      smallCpu,
      ingest,
      left,
      leftWhy,
      eventsAfter,
      findable,
      totalSeconds: seconds(began),
    });
  } finally {
    await services?.releasers.releaseAll(log, 10_000);
    await deleteKeys(redis, bench.prefix).catch(() => undefined);
    redis.disconnect();
    if (keep) {
      say(`--keep: the database is left at ${bench.url} (drop it with \`dropdb ${bench.name}\`)`);
      await bench.admin.end();
    } else await bench.drop();
  }
}

/** `-12.3 %`; `sign` false: `20 %`. */
function pct(fraction: number, sign = true): string {
  const v = 100 * fraction;
  return `${sign && v > 0 ? '+' : ''}${v.toFixed(1)} %`.replace('-', '−');
}

/** Where the machine's CPU went in an ingest window, as shares of one core. */
function ingestCpuLine(w: IngestWindow): string[] {
  const cpu = w.cpu;
  if (!cpu) return [];
  const named = Object.values(cpu.groups).reduce((a, b) => a + b, 0);
  const core = (ms: number) => `${((100 * ms) / cpu.wallMs).toFixed(0)} %`;
  return [
    `- CPU ${w.label} (shares of one core; the machine has ${os.cpus().length}): the machine ${(100 * cpu.machineBusy).toFixed(0)} % busy; ` +
      `${Object.entries(cpu.groups).filter(([, ms]) => ms > 0).map(([name, ms]) => `${name} ${core(ms)}`).join(', ')}, everything else ${core(Math.max(0, cpu.machineMs - named))}`,
  ];
}

function report(r: Results): void {
  const heavyTotals = r.heavy.map((h) => h.totalMs);
  const step7 = r.heavy.map((h) => h.stepsMs[6] ?? 0);
  const p95 = quantile(heavyTotals, 0.95);
  const rate = r.small.length / r.smallSeconds;
  const allClean = [...r.heavy, ...r.small].every((t) => t.clean);
  const heavyMet = p95 <= TARGET_HEAVY_P95_MS && allClean && r.fill.events >= TARGET_DATABASE_EVENTS;
  const rateMet = rate >= TARGET_SMALL_RATE && allClean;
  const floorTotals = r.floor.map((f) => f.totalMs);
  const floorEvents = r.floor.map((f) => f.eventsMs);
  const smallTotals = r.small.map((s) => s.totalMs);
  const ing = r.ingest;
  const acceptedDropMet = ing.acceptedDrop <= TARGET_INGEST_DROP;
  const storedDropMet = ing.storedDrop <= TARGET_INGEST_DROP;
  const verdictOf = (met: boolean) => (quick ? 'not judged (--quick)' : met ? 'met' : 'missed');
  const table = [
    '| measure | p50 / p95 / max | target | verdict |',
    '| --- | ---: | --- | --- |',
    `| heavy person (10,000 events): runErasure, all 8 steps, ms | ${spread(heavyTotals)} | ≤ 1,000 ms at p95, in ≥ 1,000,000 events | ${heavyMet ? 'met' : r.fill.events < TARGET_DATABASE_EVENTS ? 'not judged: the database is smaller' : 'missed'} |`,
    `| … of which step 7, the by-index verification, ms | ${spread(step7)} | — | — |`,
    `| … verifyByIndex alone on the same work afterwards, ms | ${spread(r.reverify)} | — | — |`,
    `| floor: a twin's rows deleted by plain SQL in one transaction (no verification, no Redis), ms | ${spread(floorTotals)} | — | — |`,
    `| … of which \`delete from app.events where profile_id = any(…)\` (10,000 rows), ms | ${spread(floorEvents)} | — | — |`,
    `| small erasures (5 events each), ${CONCURRENCY} in flight in one process, grouped as the worker groups them: erasures/s | ${rate.toFixed(1)} | ≥ ${TARGET_SMALL_RATE}/s | ${rateMet ? 'met' : 'missed'} |`,
    `| … each small erasure, ms | ${spread(smallTotals)} | — | — |`,
    `| batched POST ingest, events/s accepted: without erasures → while the erasure worker runs (means of ${Math.ceil(WINDOWS / 2)} and ${Math.floor(WINDOWS / 2)} windows of ${WINDOW_S} s) | ${fmt(ing.baseline.accepted)} → ${fmt(ing.during.accepted)} (${pct(-ing.acceptedDrop)}) | drops ≤ ${pct(TARGET_INGEST_DROP, false)} | ${verdictOf(acceptedDropMet)} |`,
    `| … events stored by the events worker, events/s, the same windows | ${fmt(ing.baseline.stored)} → ${fmt(ing.during.stored)} (${pct(-ing.storedDrop)}) | drops ≤ ${pct(TARGET_INGEST_DROP, false)} | ${verdictOf(storedDropMet)} |`,
  ].join('\n');
  const stepRow = (name: string, i: number) => {
    const h = r.heavy.map((t) => t.stepsMs[i] ?? 0);
    const s = r.small.map((t) => t.stepsMs[i] ?? 0);
    return `| ${name} | ${ms(quantile(h, 0.5))} | ${ms(quantile(h, 0.95))} | ${ms(quantile(s, 0.5))} | ${ms(quantile(s, 0.95))} |`;
  };
  const steps = ['| step | heavy p50 ms | heavy p95 ms | small p50 ms | small p95 ms |', '| --- | ---: | ---: | ---: | ---: |', ...STEP_NAMES.map((n, i) => stepRow(n, i))].join('\n');
  const cpuLine = (what: string, cpu: CpuWindow | undefined, n: number) => {
    if (!cpu || n === 0) return [];
    const { bench = 0, postgres = 0, redis = 0 } = cpu.groups;
    const others = Math.max(0, cpu.machineMs - bench - postgres - redis);
    const per = (v: number) => (v / n).toFixed(1);
    return [
      `- CPU during the ${what}: the machine ${(100 * cpu.machineBusy).toFixed(0)} % busy over ${os.cpus().length} cores; CPU ms an erasure: the engine (this process) ${per(bench)}, ` +
        `PostgreSQL backends of the bench database ${per(postgres)}, Redis (a server other work on the machine uses too) ${per(redis)}, everything else on the machine ${per(others)} (${((100 * others) / Math.max(1, cpu.wallMs * os.cpus().length)).toFixed(0)} % of the machine)`,
    ];
  };
  const removed = r.heavy[0]?.removed ?? {};
  const rowsLine = Object.entries(r.fill.rows)
    .map(([t, n]) => `${t} ${fmt(n)}`)
    .join(', ');
  const lines = [
    `- database: ${rowsLine}; ${r.fill.partitions} monthly partitions of app.events; ${r.fill.sizes}`,
    `- filled by set-based SQL in ${Object.values(r.fill.seconds).reduce((a, b) => a + b, 0).toFixed(0)} s (${Object.entries(r.fill.seconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join('; ')})`,
    `- Redis before the erasures: ${r.redisBefore} (${fmt(r.redisFill.events)} queued events in ${r.redisFill.eventJobs} sealed batches, ${r.redisFill.erasedEventsQueued} of them the erased people's)`,
    `- what one heavy erasure removed: ${Object.entries(removed).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`,
    `- step 4 for nobody (every job in Redis opened, every event stream read, nothing found): ${spread(r.scanMs)} ms over 5 runs, with ${r.scanShape}; ` +
      `its parts, measured with the same calls: ${Object.entries(r.scan).map(([k, v]) => `${k} ${ms(v)} ms`).join(', ')}`,
    `- by-index check, slowest statements on a heavy person's work (best of 3): ${r.columns.slice(0, 5).map((c) => `${c.where} ${ms(c.ms)} ms`).join(', ')}; all ${r.columns.length} column checks ${ms(r.columns.reduce((a, c) => a + c.ms, 0))} ms`,
    `- EXPLAIN ANALYZE of engine statements on a heavy person nobody erases (rolled back): ${r.enginePlans.map((p) => `${p.what} ${ms(p.executionMs)} ms`).join('; ')}`,
    `- the floor's parts (p50 ms): ${Object.keys(r.floor[0]?.parts ?? {}).map((k) => `${k} ${ms(quantile(r.floor.map((f) => f.parts[k] ?? 0), 0.5))}`).join(', ')}`,
    `- creating the requests (createErasureRequest by email, one at a time): heavy ${spread(r.heavyCreateMs)} ms; the ${fmt(r.smallPlanned)} small ones in ${r.smallCreateSeconds.toFixed(1)} s (${(r.smallPlanned / r.smallCreateSeconds).toFixed(0)}/s), not counted in the rates above`,
    ...cpuLine('heavy erasures (the floor included)', r.heavyCpu, r.heavy.length),
    ...cpuLine('small erasures', r.smallCpu, r.small.length),
    `- ingest while erasing: ${ing.windows.length} windows of ${WINDOW_S} s, alternately without erasures and with them, the same load in each: autocannon (in this process) with ${INGEST_CONNECTIONS} connections posting batches of ${INGEST_BATCH} events to the API (its own process), ` +
      `one events worker process storing them (with a backlog from a warm-up on, so it is never idle); ${ing.windows.map((w) => `${w.label}: ${fmt(w.accepted)} accepted (p99 ${w.p99} ms, ${w.non2xx + w.errors} non-2xx or errors), ${fmt(w.stored)} stored`).join('; ')} (events/s)`,
    `- the erasures meanwhile: one erasure worker process (\`consentflow worker --queues erasure\`, its jobs grouped), started as each window with erasures began and stopped as it ended, working through ${ing.queued.heavy + ing.queued.small} requests queued by email ` +
      `(${ing.queued.heavy} heavy people of ${fmt(HEAVY_EVENTS)} events, every ${HEAVY_EVERY}th request from the second on, among ${ing.queued.small} small ones); completed inside those windows: ${ing.inWindows.heavy} heavy and ${ing.inWindows.small} small ` +
      `(${((ing.inWindows.heavy + ing.inWindows.small) / Math.max(1, ing.erasingSeconds)).toFixed(1)} a second)` +
      (ing.ranOut ? '; the worker finished every queued request, so erasures ran for part of the windows only' : '') +
      (ing.leftovers > 0 ? `; ${ing.leftovers} not reached by the worker were run afterwards in this process (not measured)` : ''),
    ...ing.windows.flatMap((w) => ingestCpuLine(w)),
    ...(r.small.length < r.smallPlanned ? [`- small erasures: ${fmt(r.small.length)} of the ${fmt(r.smallPlanned)} requested were run; no new one is started after ${SMALL_BUDGET_S} s`] : []),
    `- afterwards: every receipt's verification clean: ${allClean ? 'yes' : 'NO'}; people still found by email: ${r.findable} of ${fmt(r.heavy.length + r.floor.length + r.small.length + r.ingest.erased.length)} erased; ` +
      `app.events ${fmt(r.eventsAfter)} rows of the fill left (${fmt(r.expectedEvents)} expected); ` +
      `the erased people's events still queued in Redis batches: ${r.left.events} (in ${r.left.jobs} batches left)` +
      (r.left.events > 0 ? `: ${r.leftWhy.join('; ')}` : ''),
  ].join('\n');
  say(`\n${table}\n\n${steps}\n\n${lines}\n`);
  for (const plan of [...r.plans, ...r.enginePlans.map((p) => p.plan)]) say(`${plan}\n`);
  say(`total run: ${r.totalSeconds.toFixed(0)} s`);
  const judged = (met: boolean) => (quick ? null : met);
  const quickNote = quick ? `--quick: ${fmt(r.fill.events)} events in the database, ${r.heavy.length} heavy and ${r.small.length} small erasures; not judged` : undefined;
  const figures: Figure[] = [
    {
      name: 'erasure of a 10,000-event person, p95',
      value: Math.round(p95),
      unit: 'ms',
      target: '≤ 1 s p95',
      met: judged(heavyMet),
      note: quickNote ?? `p50 ${ms(quantile(heavyTotals, 0.5))} ms over ${r.heavy.length} people in ${fmt(r.fill.events)} events; the floor (plain SQL, one transaction) p50 ${ms(quantile(floorTotals, 0.5))} ms`,
    },
    {
      name: 'small erasures a second',
      value: Number(rate.toFixed(1)),
      unit: 'erasures/s',
      target: '≥ 100/s',
      met: judged(rateMet),
      note: quickNote ?? `${CONCURRENCY} in flight in one process, grouped as the erasure worker groups them; each ${ms(quantile(smallTotals, 0.5))} ms from request to receipt at p50`,
    },
    {
      name: 'ingest drop while erasing (batched POST, events/s accepted)',
      value: Number((100 * ing.acceptedDrop).toFixed(1)),
      unit: '%',
      target: '≤ 20%',
      ceiling: { name: 'batched POST without erasures (mean of the windows without)', value: Math.round(ing.baseline.accepted), unit: 'events/s' },
      met: judged(acceptedDropMet),
      note:
        quickNote ??
        `${fmt(ing.baseline.accepted)} → ${fmt(ing.during.accepted)} events/s accepted while one erasure worker completed ${ing.inWindows.heavy} heavy and ${ing.inWindows.small} small erasures in ${ing.erasingSeconds.toFixed(0)} s; stored by the events worker ${fmt(ing.baseline.stored)} → ${fmt(ing.during.stored)} events/s (${pct(-ing.storedDrop)})`,
    },
    {
      name: 'stored events/s drop while erasing (events worker)',
      value: Number((100 * ing.storedDrop).toFixed(1)),
      unit: '%',
      target: '≤ 20%',
      ceiling: { name: 'events stored without erasures (mean of the windows without)', value: Math.round(ing.baseline.stored), unit: 'events/s' },
      met: judged(storedDropMet),
      ...(quickNote ? { note: quickNote } : {}),
    },
  ];
  writeResults({ scenario: 'erasure', quick, seconds: Number(r.totalSeconds.toFixed(1)), figures });
  if (quick) {
    say('--quick: a database a tenth of the target\'s size; docs/benchmarks.md left unchanged');
    return;
  }
  const section = [
    '<!-- bench:erasure:start -->',
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, \`npm run bench:erasure\` (${r.totalSeconds.toFixed(0)} s). ` +
      'PostgreSQL, Redis and the engine (loaded from dist/, in the bench process) share the machine. ' +
      `A private database filled with set-based SQL: ${fmt(PROFILES)} people and ${fmt(r.fill.events)} events; ${HEAVY} heavy people with ${fmt(HEAVY_EVENTS)} events each ` +
      `(plus consent, segments, decisions, journeys, sends, a double opt-in and a merged anonymous profile) erased one at a time, ` +
      `requested by email and run by \`runErasure\` with each step timed; ${fmt(SMALL)} small people (${SMALL_EVENTS} events each) erased ${CONCURRENCY} in flight, grouped as the erasure worker groups them (all requested first). ` +
      `The floor is a twin of a heavy person (${TWINS} of them, one before every ${Math.round(HEAVY / TWINS)}th heavy erasure) deleted by plain SQL in one transaction. ` +
      `Ingest while erasing: the API and one events worker (their own processes) under autocannon's batched POSTs, ${WINDOWS} windows of ${WINDOW_S} s alternately without erasures and while one erasure worker process ` +
      `erases ${WINDOW_HEAVY} more heavy and up to ${WINDOW_SMALL} more small people kept for this; the drop compares the means. ` +
      `${r.settings}.`,
    '',
    table,
    '',
    steps,
    '',
    lines,
    '<!-- bench:erasure:end -->',
  ].join('\n');
  writeDocsSection('bench:erasure', section, '## Erasure');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:erasure failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

/**
 * The raw PostgreSQL ceiling: rows shaped like a stored event (id, profile, name, time, JSON
 * properties) written into an unindexed table of a private database, one connection, one statement
 * at a time, in the set-based forms the workers use: a multi-row VALUES insert and
 * `insert … select from unnest(…)`, 1,000 rows a statement; and `COPY … FROM STDIN` through psql
 * when it is installed (node's pg has no COPY without pg-copy-streams, which is not a dependency).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export interface PostgresCeiling {
  readonly rows: number;
  readonly perStatement: number;
  readonly multiRowPerSec: number;
  readonly unnestPerSec: number;
  /** Undefined when psql is not on PATH. */
  readonly copyPerSec?: number;
}

const PER_STATEMENT = 1_000;
const NAMES = ['Page Viewed', 'Product Viewed', 'Product Added', 'Checkout Started', 'Order Completed'];

interface Rows {
  readonly id: string[];
  readonly profile: string[];
  readonly name: string[];
  readonly at: string[];
  readonly properties: string[];
}

function rowsOf(n: number): Rows {
  const base = Date.now() - 86_400_000;
  const profiles = Array.from({ length: 1_000 }, () => randomUUID());
  const rows: Rows = { id: [], profile: [], name: [], at: [], properties: [] };
  for (let i = 0; i < n; i++) {
    rows.id.push(String(i + 1));
    rows.profile.push(profiles[i % profiles.length] as string);
    rows.name.push(NAMES[i % NAMES.length] as string);
    rows.at.push(new Date(base + i).toISOString());
    rows.properties.push(JSON.stringify({ product_id: `p-${i % 500}`, price: 19.99, currency: 'PLN', url: 'https://shop.example/pricing' }));
  }
  return rows;
}

async function timed(run: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1_000;
}

async function multiRow(client: pg.Client, rows: Rows): Promise<void> {
  for (let from = 0; from < rows.id.length; from += PER_STATEMENT) {
    const n = Math.min(PER_STATEMENT, rows.id.length - from);
    const values: string[] = [];
    const params: string[] = [];
    for (let i = 0; i < n; i++) {
      const k = i * 5;
      values.push(`($${k + 1}::bigint, $${k + 2}::uuid, $${k + 3}, $${k + 4}::timestamptz, $${k + 5}::jsonb)`);
      const j = from + i;
      params.push(rows.id[j] as string, rows.profile[j] as string, rows.name[j] as string, rows.at[j] as string, rows.properties[j] as string);
    }
    await client.query(`insert into ceiling_events (id, profile_id, name, occurred_at, properties) values ${values.join(', ')}`, params);
  }
}

async function unnest(client: pg.Client, rows: Rows): Promise<void> {
  for (let from = 0; from < rows.id.length; from += PER_STATEMENT) {
    const to = from + PER_STATEMENT;
    await client.query(
      `insert into ceiling_events (id, profile_id, name, occurred_at, properties)
       select * from unnest($1::bigint[], $2::uuid[], $3::text[], $4::timestamptz[], $5::jsonb[])`,
      [rows.id.slice(from, to), rows.profile.slice(from, to), rows.name.slice(from, to), rows.at.slice(from, to), rows.properties.slice(from, to)],
    );
  }
}

/** COPY FROM STDIN by psql, in text format (the values hold no tab, newline or backslash). */
function copy(url: string, rows: Rows): Promise<void> {
  const lines: string[] = [];
  for (let i = 0; i < rows.id.length; i++) lines.push(`${rows.id[i]}\t${rows.profile[i]}\t${rows.name[i]}\t${rows.at[i]}\t${rows.properties[i]}\n`);
  return new Promise((resolve, reject) => {
    const psql = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', 'copy ceiling_events (id, profile_id, name, occurred_at, properties) from stdin'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let err = '';
    psql.stderr.on('data', (c: Buffer) => (err += c.toString()));
    psql.once('error', reject);
    psql.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql copy exited with ${code}: ${err.slice(-1000)}`))));
    psql.stdin.end(lines.join(''));
  });
}

const hasPsql = () => spawnSync('psql', ['--version'], { stdio: 'ignore' }).status === 0;

/** Each form writes `n` rows into the emptied table; rows a second, the statements' time only. */
export async function measurePostgres(url: string, n: number): Promise<PostgresCeiling> {
  const rows = rowsOf(n);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('create table ceiling_events (id bigint, profile_id uuid, name text, occurred_at timestamptz, properties jsonb)');
    const run = async (form: () => Promise<void>) => {
      await client.query('truncate ceiling_events');
      // Each form starts from a clean WAL (skipped without the right to checkpoint).
      await client.query('checkpoint').catch(() => undefined);
      const seconds = await timed(form);
      const { rows: counted } = await client.query<{ n: string }>('select count(*)::text as n from ceiling_events');
      if (Number(counted[0]?.n) !== n) throw new Error(`expected ${n} rows, found ${counted[0]?.n}`);
      return n / seconds;
    };
    const multiRowPerSec = await run(() => multiRow(client, rows));
    const unnestPerSec = await run(() => unnest(client, rows));
    const copyPerSec = hasPsql() ? await run(() => copy(url, rows)) : undefined;
    return { rows: n, perStatement: PER_STATEMENT, multiRowPerSec, unnestPerSec, ...(copyPerSec === undefined ? {} : { copyPerSec }) };
  } finally {
    await client.end();
  }
}

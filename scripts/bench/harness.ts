/**
 * What every benchmark script shares: the repository root and service URLs, a private database with
 * the engine's environment, child processes started and stopped, the machine described, and the
 * script's own section of docs/benchmarks.md rewritten between its markers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';

export const ROOT = path.resolve(__dirname, '..', '..');
export const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export interface BenchDatabase {
  /** The database's name, `cf_bench_<random>`. */
  readonly name: string;
  readonly url: string;
  /** A connection to the server's admin database (kept open until `drop`). */
  readonly admin: pg.Client;
  /** A queue prefix of its own. */
  readonly prefix: string;
  readonly dataDir: string;
  /** The engine's environment for this run (production mode, fresh keys); `extra` wins. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** Drops the database, deletes every Redis key under the prefix, closes the admin connection and removes the data directory. */
  drop(): Promise<void>;
}

/** Deletes every key under a queue prefix (SCAN, then UNLINK in pages): the bench's own keys only. */
export async function deleteRedisPrefix(prefix: string): Promise<number> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  let deleted = 0;
  try {
    // SCAN's MATCH is a glob: escape the braces and brackets a prefix may hold.
    const pattern = `${prefix.replace(/[\\[\]{}*?]/g, (c) => `\\${c}`)}:*`;
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  const name = `cf_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const prefix = `{cf-bench-${randomBytes(4).toString('hex')}}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-bench-'));
  const keys = {
    MASTER_KEY: randomBytes(32).toString('base64'),
    PSEUDONYM_KEY: randomBytes(32).toString('base64'),
    LINK_SIGNING_KEY: randomBytes(32).toString('base64'),
  };
  return {
    name,
    url: url.toString(),
    admin,
    prefix,
    dataDir,
    env: (extra = {}) => ({
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      DATABASE_URL: url.toString(),
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      DATA_DIR: dataDir,
      // The readiness lines the scripts wait for are at info (production's level).
      LOG_LEVEL: 'info',
      // The load generators hammer from 127.0.0.1: the public rate limits are off, or they would
      // measure the limiter's 429s instead of the engine.
      HTTP_RATE_LIMIT_PER_IP: 'off',
      HTTP_RATE_LIMIT_PER_WRITE_KEY: 'off',
      ...keys,
      ...extra,
    }),
    async drop() {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
      fs.rmSync(dataDir, { recursive: true, force: true });
      // Jobs a run left queued (a backlog not drained, a scenario stopped early) would otherwise stay
      // in the shared Redis for good: ten thousand of them had piled up from earlier runs.
      await deleteRedisPrefix(prefix);
    },
  };
}

/** Starts a process and resolves once its output shows `readyText`; its output is read to the end (a full pipe would stall it). */
export function startProcess(command: string, args: string[], env: NodeJS.ProcessEnv, readyText: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let ready = false;
    const onData = (chunk: Buffer) => {
      if (ready) return;
      output += chunk.toString();
      if (output.includes(readyText)) {
        ready = true;
        resolve(child);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${output.slice(-2000)}`)));
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** `2 cores (AMD EPYC …), 24 GiB, Node v20…`: the start of each section's first line. */
export function machine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

/**
 * `--no-docs`: the script prints its figures and leaves docs/benchmarks.md alone (trial runs, and the
 * suite's `--quick` run, which CI makes on a clean clone).
 */
export function noDocs(argv: readonly string[] = process.argv): boolean {
  return argv.includes('--no-docs');
}

/**
 * Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in docs/benchmarks.md with
 * `section` (which includes both markers); appended, under `heading` if given, when absent.
 */
export function writeDocsSection(name: string, section: string, heading?: string): void {
  if (noDocs()) {
    process.stdout.write(`--no-docs: docs/benchmarks.md left unchanged (its ${name} section not written)\n`);
    return;
  }
  const docPath = path.join(ROOT, 'docs', 'benchmarks.md');
  const existing = fs.existsSync(docPath) ? fs.readFileSync(docPath, 'utf8') : '# Benchmarks\n';
  const markers = new RegExp(`<!-- ${name}:start -->[\\s\\S]*<!-- ${name}:end -->`);
  const updated = markers.test(existing)
    ? existing.replace(markers, () => section)
    : `${existing.trimEnd()}\n\n${heading ? `${heading}\n\n` : ''}${section}\n`;
  fs.writeFileSync(docPath, updated);
}

/** Runs `node ARGS` to its end and returns its standard output (rejects on a non-zero exit). */
export function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`))));
  });
}

/** A TCP port free on loopback right now, for a server a script starts (fixed ports collide when two benches run at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The Redis ceiling: `redis-benchmark -q -t set,get,lpush -n N -P 1` against the server the engine
 * uses (50 clients, its default; no pipelining), in a database number of its own so its keys
 * (`key:__rand_int__`, `mylist`) meet nothing else's, deleted afterwards.
 */
import { spawn, spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { REDIS_URL } from './harness';

export interface RedisCeiling {
  readonly requests: number;
  /** Requests a second by command, as redis-benchmark reports them. */
  readonly perSec: Readonly<Record<string, number>>;
  /** p50 latency in ms by command, when reported. */
  readonly p50Ms: Readonly<Record<string, number>>;
}

const DB = 12;

export const hasRedisBenchmark = () => spawnSync('redis-benchmark', ['--version'], { stdio: 'ignore' }).status === 0;

/** `SET: 98039.22 requests per second, p50=0.255 msec` (progress lines end in \r and are skipped). */
export function parseRedisBenchmark(output: string): Pick<RedisCeiling, 'perSec' | 'p50Ms'> {
  const perSec: Record<string, number> = {};
  const p50Ms: Record<string, number> = {};
  for (const line of output.split(/[\r\n]+/)) {
    const m = /^\s*([A-Z]+)(?:\s*\([^)]*\))?:\s*([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/.exec(line);
    if (!m) continue;
    perSec[m[1] as string] = Number(m[2]);
    if (m[3] !== undefined) p50Ms[m[1] as string] = Number(m[3]);
  }
  return { perSec, p50Ms };
}

export async function measureRedis(requests: number): Promise<RedisCeiling> {
  const url = new URL(REDIS_URL);
  const args = ['-h', url.hostname || '127.0.0.1', '-p', url.port || '6379', '--dbnum', String(DB), '-q', '-t', 'set,get,lpush', '-n', String(requests), '-P', '1'];
  const env = { ...process.env, ...(url.password ? { REDISCLI_AUTH: decodeURIComponent(url.password) } : {}) };
  if (url.username && url.username !== 'default') args.push('--user', decodeURIComponent(url.username));
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('redis-benchmark', args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-benchmark exited with ${code}: ${out.slice(-1000)}`))));
  });
  const parsed = parseRedisBenchmark(output);
  for (const command of ['SET', 'GET', 'LPUSH']) {
    if (!(command in parsed.perSec)) throw new Error(`redis-benchmark printed no ${command} figure: ${output.slice(-1000)}`);
  }
  const redis = new Redis(REDIS_URL, { db: DB, maxRetriesPerRequest: 1 });
  await redis.del('key:__rand_int__', 'mylist').finally(() => redis.disconnect());
  return { requests, ...parsed };
}

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from '../log/logger';

/**
 * A private redis-server under DATA_DIR, for the embedded default: listens on a unix socket only (no
 * TCP port to collide with or expose), appends every write to its AOF with fsync every second, never
 * evicts. Stopped with SHUTDOWN, which flushes the AOF, when the engine stops.
 */
export interface EmbeddedRedis {
  readonly socketPath: string;
  stop(): Promise<void>;
}

export class RedisServerMissingError extends Error {
  override readonly name = 'RedisServerMissingError';
}

function findOnPath(binary: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, binary);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

async function ping(socketPath: string): Promise<boolean> {
  const probe = new Redis({ path: socketPath, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

export async function startEmbeddedRedis(dataDir: string, searchPath: string, log: Logger): Promise<EmbeddedRedis> {
  const dir = path.join(dataDir, 'redis');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // unix socket paths are limited to ~107 bytes; a deep DATA_DIR falls back to a short path in /tmp.
  let socketPath = path.join(dir, 'redis.sock');
  if (Buffer.byteLength(socketPath) > 100) socketPath = path.join('/tmp', `consentflow-${process.getuid?.() ?? 0}-${Buffer.from(dir).toString('base64url').slice(-24)}.sock`);

  let child: ChildProcess | undefined;
  if (await ping(socketPath)) {
    // Left running by an engine that was killed: it holds that engine's queues, so adopt it.
    log.warn({ socketPath }, 'adopting an embedded redis-server left running by an earlier process');
  } else {
    const binary = findOnPath('redis-server', searchPath);
    if (!binary) {
      throw new RedisServerMissingError(
        'no Redis reachable and no redis-server on the PATH: start one with `docker compose up -d redis`, or install your distribution\'s redis-server package (e.g. `apt-get install redis-server`), or set REDIS_URL',
      );
    }
    fs.rmSync(socketPath, { force: true });
    child = spawn(
      binary,
      [
        '--port', '0',
        '--unixsocket', socketPath,
        '--unixsocketperm', '700',
        '--dir', dir,
        '--appendonly', 'yes',
        '--appendfsync', 'everysec',
        '--save', '',
        '--maxmemory-policy', 'noeviction',
        '--daemonize', 'no',
        '--logfile', path.join(dir, 'redis.log'),
      ],
      { stdio: 'ignore' },
    );
    const exited = new Promise<never>((_, reject) =>
      child?.once('exit', (code) => reject(new Error(`redis-server exited with code ${code}; see ${path.join(dir, 'redis.log')}`))),
    );
    exited.catch(() => {});
    await Promise.race([waitFor(() => ping(socketPath), 10_000, 'the embedded redis-server'), exited]);
    log.info({ socketPath, pid: child.pid }, 'embedded redis-server started');
  }

  return {
    socketPath,
    stop: async () => {
      const client = new Redis({ path: socketPath, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.call('SHUTDOWN');
      } catch {
        // SHUTDOWN closes the connection before replying: an error here is the expected outcome.
      } finally {
        client.disconnect();
      }
      if (child && child.exitCode === null) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            child?.kill('SIGKILL');
            resolve();
          }, 5_000);
          child?.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      } else {
        await waitFor(async () => !(await ping(socketPath)), 5_000, 'the embedded redis-server to stop');
      }
      log.info('embedded redis-server stopped');
    },
  };
}

import { type ChildProcess, spawn } from 'node:child_process';
import { tempDir } from '../../support/config';
import { freePort, redisAnswers } from '../../support/redis-server';
import { waitFor } from '../../support/wait';

/**
 * A private redis-server for the Redis fault scenarios, configured as production should be: AOF on,
 * `noeviction`; its data directory is its own, so a restart finds what was acknowledged. With
 * `appendfsync always` a SIGKILL loses no acknowledged write (with the default `everysec`, Redis
 * itself may lose the last second: DESIGN.md "Stores"; not what these scenarios measure).
 */
export interface PersistentRedis {
  readonly url: string;
  readonly port: number;
  /** SIGKILL (a crash) or SIGTERM (a clean shutdown: Redis writes its AOF and exits). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
}

export async function startPersistentRedis(appendfsync: 'always' | 'everysec' = 'always'): Promise<PersistentRedis> {
  const port = await freePort();
  const dir = tempDir('cf-fault-redis');
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const answers = () => redisAnswers(url);
  const redis: PersistentRedis = {
    url,
    port,
    async start() {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', appendfsync, '--save', '', '--maxmemory-policy', 'noeviction'],
        { stdio: 'ignore' },
      );
      await waitFor(answers, { timeoutMs: 30_000, what: `redis-server on port ${port}` });
    },
    async stop(signal = 'SIGKILL') {
      const running = child;
      if (!running || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill(signal);
      await exited;
    },
  };
  await redis.start();
  process.once('exit', () => child?.kill('SIGKILL'));
  return redis;
}

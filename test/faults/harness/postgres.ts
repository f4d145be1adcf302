import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { waitFor } from '../../support/wait';

/**
 * The shared PostgreSQL cluster (127.0.0.1:5432), stopped and started for scenario 4 with
 * pg_ctlcluster. Other people's tests use it at the same time: a scenario keeps the outage to
 * seconds and always calls `ensureUp` when it ends, whatever happened.
 */
const VERSION = (() => {
  try {
    return fs.readdirSync('/etc/postgresql').sort().pop() ?? '15';
  } catch {
    return '15';
  }
})();

/** Not spawnSync: the scenario's load and polls go on while pg_ctlcluster works. */
function ctl(action: 'stop' | 'start', extra: string[] = []): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('pg_ctlcluster', ['--skip-systemctl-redirect', VERSION, 'main', action, ...extra], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`pg_ctlcluster ${action} failed: ${stderr || stdout || err.message}`)) : resolve(),
    ),
  );
}

export function postgresReady(): boolean {
  return spawnSync('pg_isready', ['-h', '127.0.0.1', '-q'], { timeout: 10_000 }).status === 0;
}

/** Stops it the way a restart does (`-m fast`: open transactions are rolled back, sessions ended). */
export async function stopPostgres(): Promise<void> {
  await ctl('stop', ['-m', 'fast']);
}

export async function startPostgres(): Promise<void> {
  await ctl('start');
  await waitFor(postgresReady, { timeoutMs: 60_000, what: 'PostgreSQL accepting connections (pg_isready)' });
}

/** Starts it again if it is not answering: every scenario's finally. */
export async function ensurePostgresUp(): Promise<void> {
  if (postgresReady()) return;
  try {
    await ctl('start');
  } catch {
    // Already starting (or started by someone else): pg_isready decides.
  }
  await waitFor(postgresReady, { timeoutMs: 60_000, what: 'PostgreSQL accepting connections (pg_isready)' });
}

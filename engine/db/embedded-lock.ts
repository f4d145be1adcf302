import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../errors';

/**
 * PGlite is a single-process database: two processes opening the same directory would corrupt it.
 * A pid file refuses the second one with a message that says what to do instead.
 */
export function lockEmbeddedDirectory(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const lockPath = path.join(dir, 'consentflow.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(lockPath, 'utf8') === String(process.pid)) fs.unlinkSync(lockPath);
        } catch {
          // Already gone: nothing to release.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number.parseInt(fs.readFileSync(lockPath, 'utf8'), 10);
      if (Number.isInteger(owner) && owner !== process.pid && isAlive(owner)) {
        throw new AppError(
          'EMBEDDED_DB_IN_USE',
          `the embedded database in ${dir} is in use by process ${owner}; stop that process first, or set DATABASE_URL to share one PostgreSQL between processes`,
        );
      }
      fs.unlinkSync(lockPath); // left by a process that died: safe to take over
    }
  }
  throw new AppError('EMBEDDED_DB_IN_USE', `could not lock the embedded database in ${dir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

import type { Logger } from '../log/logger';

/**
 * Resources register how to release themselves as they are opened; release runs them in reverse
 * order (the last opened closes first), each given a share of the remaining deadline, and keeps going
 * past one that fails so the rest still close.
 */
export class Releasers {
  private readonly stack: Array<{ name: string; release: () => Promise<void> }> = [];

  add(name: string, release: () => Promise<void>): void {
    this.stack.push({ name, release });
  }

  /** Returns false if any release failed or the deadline passed. */
  async releaseAll(log: Logger, deadlineMs: number): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    let clean = true;
    for (let entry = this.stack.pop(); entry; entry = this.stack.pop()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        log.error({ resource: entry.name }, 'shutdown deadline passed before this resource was released');
        clean = false;
        continue;
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          entry.release(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`not released within ${remaining} ms`)), remaining);
          }),
        ]);
        log.debug({ resource: entry.name }, 'released');
      } catch (err) {
        clean = false;
        log.error({ resource: entry.name, err: { name: (err as Error).name, message: (err as Error).message } }, 'release failed');
      } finally {
        clearTimeout(timer);
      }
    }
    return clean;
  }
}

import type { EngineProcess } from './processes';

/**
 * Kills (SIGKILL) a random one of the given roles at random moments and starts it again at once, as
 * a process supervisor would: each role is a factory, so the replacement is a new process.
 */
export interface Role {
  readonly name: string;
  current: EngineProcess;
  /** Starts a replacement (not waiting for it to be ready: the next kill may find it starting). */
  readonly start: () => EngineProcess;
}

export interface Killer {
  /** Stops killing; resolves once every role's current process is ready. */
  stop(): Promise<void>;
  readonly kills: Array<{ role: string; at: number }>;
  /** Date.now() of the last kill, or undefined. */
  lastKillAt(): number | undefined;
}

export function startKiller(roles: Role[], options: { minMs: number; maxMs: number; random?: () => number }): Killer {
  const random = options.random ?? Math.random;
  const kills: Array<{ role: string; at: number }> = [];
  let running = true;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    while (running) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.minMs + random() * (options.maxMs - options.minMs));
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (!running) break;
      const role = roles[Math.floor(random() * roles.length)] as Role;
      await role.current.kill9();
      kills.push({ role: role.name, at: Date.now() });
      role.current = role.start();
    }
  })();
  return {
    kills,
    lastKillAt: () => kills[kills.length - 1]?.at,
    async stop() {
      running = false;
      wake?.();
      await loop;
      await Promise.all(roles.map((r) => r.current.ready()));
    },
  };
}

/** A seeded PRNG (mulberry32), so a failing run's kill schedule can be told apart and repeated. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * CPU accounting for benchmarks, from /proc (Linux): how busy the whole machine was over a window,
 * and how much CPU given processes used in it. On a machine shared with PostgreSQL, Redis and the
 * load generator, this says whether a scenario was limited by its own process or by the machine.
 * Elsewhere (no /proc) every reading is undefined and the scripts leave the figures out.
 */
import fs from 'node:fs';

/** USER_HZ: /proc counts CPU time in 1/100 s on every Linux architecture Node runs on. */
export const MS_PER_TICK = 10;

/** Busy and total CPU ticks of the whole machine so far (/proc/stat), all cores. */
export function machineTicks(): { busy: number; all: number } | undefined {
  try {
    const fields = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const all = fields.reduce((a, b) => a + b, 0);
    // idle and iowait
    return { busy: all - (fields[3] ?? 0) - (fields[4] ?? 0), all };
  } catch {
    return undefined;
  }
}

/** utime + stime of a process, in ms; undefined when it is gone. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields 14 and 15, counted after the parenthesised command name (which may hold spaces).
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(after[11]) + Number(after[12])) * MS_PER_TICK;
  } catch {
    return undefined;
  }
}

export interface CpuWindow {
  /** Share of all cores busy over the window (0..1), every process on the machine included. */
  readonly machineBusy: number;
  /** Wall time of the window, ms. */
  readonly wallMs: number;
  /** The machine's busy CPU time over the window, ms (all cores). */
  readonly machineMs: number;
  /** CPU ms each group of processes used over the window. */
  readonly groups: Readonly<Record<string, number>>;
}

/**
 * Starts a window. `groups` name the processes to account for; each is asked for its pids again at
 * the end, so processes started inside the window (a pool's new connections) count from zero.
 */
export function startCpuWindow(groups: Record<string, () => readonly number[] | Promise<readonly number[]>>): Promise<() => Promise<CpuWindow | undefined>> {
  return (async () => {
    const machine = machineTicks();
    const started = performance.now();
    const at = new Map<string, Map<number, number>>();
    for (const [name, pids] of Object.entries(groups)) {
      const seen = new Map<number, number>();
      for (const pid of await pids()) {
        const ms = processCpuMs(pid);
        if (ms !== undefined) seen.set(pid, ms);
      }
      at.set(name, seen);
    }
    return async () => {
      const end = machineTicks();
      const wallMs = performance.now() - started;
      if (!machine || !end || end.all <= machine.all) return undefined;
      const used: Record<string, number> = {};
      for (const [name, pids] of Object.entries(groups)) {
        let ms = 0;
        for (const pid of await pids()) ms += (processCpuMs(pid) ?? 0) - (at.get(name)?.get(pid) ?? 0);
        used[name] = ms;
      }
      const busyShare = (end.busy - machine.busy) / (end.all - machine.all);
      return { machineBusy: busyShare, wallMs, machineMs: (end.busy - machine.busy) * MS_PER_TICK, groups: used };
    };
  })();
}

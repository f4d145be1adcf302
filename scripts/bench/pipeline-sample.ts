/**
 * What `npm run bench:pipeline` reads while the pipeline runs, every few seconds and at the edges of
 * each measured window: CPU time of each group of processes (/proc/PID/stat, via proc-cpu.ts) and of
 * the whole machine (/proc/stat), resident memory of the engine's processes (/proc/PID/status
 * VmRSS), rows PostgreSQL inserted (pg_stat_user_tables) and the events queue's job counts.
 */
import fs from 'node:fs';
import type { Queue } from 'bullmq';
import type pg from 'pg';
import { machineTicks, MS_PER_TICK, processCpuMs } from './proc-cpu';

/** VmRSS of a process in MB (10^6 bytes); undefined when it is gone (or no /proc). */
export function rssMb(pid: number): number | undefined {
  try {
    const kb = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : (Number(kb) * 1_024) / 1e6;
  } catch {
    return undefined;
  }
}

export interface Sample {
  /** Date.now() when taken. */
  readonly at: number;
  readonly machine: { readonly busy: number; readonly all: number } | undefined;
  /** CPU ms so far of each pid of each group. */
  readonly cpu: Readonly<Record<string, ReadonlyMap<number, number>>>;
  /** VmRSS MB of each named process. */
  readonly rss: Readonly<Record<string, number | undefined>>;
  /** Rows inserted so far (pg_stat_user_tables.n_tup_ins, flushed by backends about once a second). */
  readonly receipts: number;
  readonly linkedEvents: number;
  readonly decisions: number;
  /** Events the load generator had seen accepted (2xx) when the sample was taken. */
  readonly accepted: number;
  /** Jobs of the events queue (each a micro-batch of events) waiting or running. */
  readonly jobsWaiting: number;
  readonly jobsActive: number;
}

export interface SamplerSources {
  readonly groups: Record<string, () => readonly number[] | Promise<readonly number[]>>;
  readonly rss: Record<string, () => number | undefined>;
  readonly db: pg.Client;
  readonly eventsQueue: Queue;
  readonly accepted: () => number;
}

export async function takeSample(s: SamplerSources): Promise<Sample> {
  const cpu: Record<string, Map<number, number>> = {};
  for (const [name, pids] of Object.entries(s.groups)) {
    const seen = new Map<number, number>();
    for (const pid of await pids()) {
      const ms = processCpuMs(pid);
      if (ms !== undefined) seen.set(pid, ms);
    }
    cpu[name] = seen;
  }
  const machine = machineTicks();
  const rss: Record<string, number | undefined> = {};
  for (const [name, pid] of Object.entries(s.rss)) {
    const p = pid();
    rss[name] = p === undefined ? undefined : rssMb(p);
  }
  const { rows } = await s.db.query<{ receipts: string; events: string; decisions: string }>(
    `select (select n_tup_ins from pg_stat_user_tables where relid = 'app.event_receipts'::regclass)::text as receipts,
            (select coalesce(sum(n_tup_ins), 0) from pg_stat_user_tables
               where relid in (select inhrelid from pg_inherits where inhparent = 'app.events'::regclass))::text as events,
            (select n_tup_ins from pg_stat_user_tables where relid = 'app.decisions'::regclass)::text as decisions`,
  );
  const counts = await s.eventsQueue.getJobCounts('wait', 'prioritized', 'active');
  return {
    at: Date.now(),
    machine,
    cpu,
    rss,
    receipts: Number(rows[0]?.receipts ?? 0),
    linkedEvents: Number(rows[0]?.events ?? 0),
    decisions: Number(rows[0]?.decisions ?? 0),
    accepted: s.accepted(),
    jobsWaiting: (counts.wait ?? 0) + (counts.prioritized ?? 0),
    jobsActive: counts.active ?? 0,
  };
}

export interface CpuBetween {
  readonly wallMs: number;
  /** Busy CPU ms of the whole machine (all cores, every process). */
  readonly machineMs: number;
  readonly machineBusy: number;
  readonly groups: Readonly<Record<string, number>>;
}

/** CPU used between two samples; a pid first seen in `b` counts from zero (a pool's new connection). */
export function cpuBetween(a: Sample, b: Sample): CpuBetween {
  const groups: Record<string, number> = {};
  for (const [name, end] of Object.entries(b.cpu)) {
    const start = a.cpu[name];
    let ms = 0;
    for (const [pid, used] of end) ms += used - (start?.get(pid) ?? 0);
    groups[name] = ms;
  }
  const ticks = a.machine && b.machine ? { busy: b.machine.busy - a.machine.busy, all: b.machine.all - a.machine.all } : undefined;
  return {
    wallMs: b.at - a.at,
    machineMs: ticks ? ticks.busy * MS_PER_TICK : NaN,
    machineBusy: ticks && ticks.all > 0 ? ticks.busy / ticks.all : NaN,
    groups,
  };
}

/** Takes a sample every `intervalMs` until stopped; each sample is kept. */
export class Sampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly sources: SamplerSources) {}

  /** One sample now (also kept). */
  async now(): Promise<Sample> {
    await this.running;
    const sample = await takeSample(this.sources);
    this.samples.push(sample);
    return sample;
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = takeSample(this.sources)
        .then((s) => void this.samples.push(s))
        .catch(() => undefined)
        .finally(() => (this.running = undefined));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}

/** Least-squares slope of y over x, per unit of x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * Least-squares slope of the lower envelope: the lowest y in each `bucket` of x, at the bucket's
 * middle. A garbage-collected heap saws up and down by tens of MB within a minute, so a slope fitted
 * to every sample swings by several MB a minute from run to run; what a leak raises is the floor the
 * collector brings the process back to.
 */
export function floorSlope(points: ReadonlyArray<readonly [number, number]>, bucket: number): number {
  if (points.length < 2) return 0;
  const start = points[0]?.[0] ?? 0;
  const floors = new Map<number, number>();
  for (const [x, y] of points) {
    const b = Math.floor((x - start) / bucket);
    floors.set(b, Math.min(floors.get(b) ?? Infinity, y));
  }
  return slope([...floors].map(([b, y]) => [start + (b + 0.5) * bucket, y] as const));
}

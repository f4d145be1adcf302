/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went: self time by package or
 * engine file, the functions with the most self time, and the engine functions with the most time
 * including what they call. Used by `npm run bench:email -- --profile` on the email worker's profile.
 */
import fs from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
  /** Wall time the profile covers, ms. */
  readonly totalMs: number;
  /** Time not idle, ms (what the CPU spent on this process's JavaScript, natives and GC). */
  readonly busyMs: number;
  readonly buckets: ReadonlyArray<{ readonly name: string; readonly ms: number }>;
  readonly selfTop: ReadonlyArray<{ readonly name: string; readonly ms: number }>;
  readonly engineInclusive: ReadonlyArray<{ readonly name: string; readonly ms: number }>;
  /** Busy time by concern: each sample goes to the first frame from the top of its stack that a concern claims. */
  readonly concerns: ReadonlyArray<{ readonly name: string; readonly ms: number }>;
}

/** A concern and the code it owns, matched against a frame's script URL. */
export type Concern = readonly [name: string, url: RegExp];

/** Where a frame's code lives: a package under node_modules, an engine file under dist/, node's own code, or V8. */
function bucketOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return dist[1] as string;
  if (url.startsWith('node:')) return 'node internals';
  return url.replace(/^file:\/\//, '');
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${bucketOf(url, functionName)}:${lineNumber + 1}` : '';
  return `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
}

export function summarizeProfile(file: string, concerns: readonly Concern[] = [], top = 12): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const buckets = new Map<string, number>();
  const selfByName = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const byConcern = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') continue;
    busy += us;
    const bucket = bucketOf(node.callFrame.url, node.callFrame.functionName);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + us);
    const name = frameName(node);
    selfByName.set(name, (selfByName.get(name) ?? 0) + us);
    // Socket writes and Buffer work are node's own frames: they belong to the library that called them.
    let concern = node.callFrame.functionName === '(garbage collector)' ? '(garbage collector)' : 'other: event loop, I/O callbacks, timers';
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const url = byId.get(at)?.callFrame.url ?? '';
      const found = url ? concerns.find(([, re]) => re.test(url)) : undefined;
      if (found) {
        concern = found[0];
        break;
      }
    }
    byConcern.set(concern, (byConcern.get(concern) ?? 0) + us);
    // Each engine function on the stack gets the sample once, however often it recurs.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at);
      if (!frame || !/\/dist\/(engine|workers)\//.test(frame.callFrame.url)) continue;
      const key = frameName(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1_000 }));
  return {
    totalMs: (profile.endTime - profile.startTime) / 1_000,
    busyMs: busy / 1_000,
    buckets: sorted(buckets),
    selfTop: sorted(selfByName),
    engineInclusive: sorted(inclusive),
    concerns: sorted(byConcern),
  };
}

export function formatProfileSummary(s: ProfileSummary, perMessages: number): string {
  const pct = (ms: number) => `${((100 * ms) / s.busyMs).toFixed(1)} %`;
  const us = (ms: number) => `${((1_000 * ms) / perMessages).toFixed(0)} µs/msg`;
  const lines = (title: string, rows: ProfileSummary['buckets']) => [title, ...rows.map((r) => `  ${pct(r.ms).padStart(7)}  ${us(r.ms).padStart(12)}  ${r.name}`)];
  return [
    `CPU profile: ${(s.busyMs / 1_000).toFixed(1)} s busy in ${(s.totalMs / 1_000).toFixed(1)} s of the process's life (start, idle waits and shutdown included), ${us(s.busyMs)} over ${perMessages.toLocaleString('en')} messages`,
    ...(s.concerns.length > 1 ? lines('by concern (each sample to the nearest library or engine file on its stack):', s.concerns) : []),
    ...lines('self time by package or engine file (% of busy):', s.buckets),
    ...lines('functions with the most self time:', s.selfTop),
    ...lines('engine functions, time including callees:', s.engineInclusive),
  ].join('\n');
}

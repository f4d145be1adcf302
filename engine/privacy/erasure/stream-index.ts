import type { Redis } from 'ioredis';

/**
 * BullMQ's event stream of a queue ("added", "delayed", "completed"… with a job id and its return
 * value), indexed per process by the uuids its entries name, so that an erasure reads only the
 * entries added since the last one instead of the whole stream (1,000 entries a queue). Entries are
 * never changed, only appended, trimmed or deleted, and stream ids only grow, so reading from the
 * last id seen misses nothing. An entry trimmed or deleted elsewhere stays indexed until evicted:
 * deleting it again is harmless (XDEL counts only what it removed).
 */

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
/** Entries remembered per stream; BullMQ trims ours to about 1,000 (engine/queues/producer.ts). */
const ENTRIES_KEPT = 20_000;
const READ_COUNT = 1_000;

interface StreamState {
  lastId: string | undefined;
  /** Entry ids in stream order, for eviction. */
  readonly order: string[];
  readonly byUuid: Map<string, Set<string>>;
  readonly uuidsOfEntry: Map<string, string[]>;
}

export type StreamIndex = Map<string, StreamState>;

export function createStreamIndex(): StreamIndex {
  return new Map();
}

export const processStreamIndex: StreamIndex = createStreamIndex();

function stateOf(index: StreamIndex, key: string): StreamState {
  let state = index.get(key);
  if (!state) {
    state = { lastId: undefined, order: [], byUuid: new Map(), uuidsOfEntry: new Map() };
    index.set(key, state);
  }
  return state;
}

function add(state: StreamState, id: string, fields: readonly string[]): void {
  const uuids = [...new Set(fields.join(' ').toLowerCase().match(UUID) ?? [])];
  state.lastId = id;
  if (uuids.length === 0) return;
  state.order.push(id);
  state.uuidsOfEntry.set(id, uuids);
  for (const u of uuids) {
    let ids = state.byUuid.get(u);
    if (!ids) state.byUuid.set(u, (ids = new Set()));
    ids.add(id);
  }
  while (state.order.length > ENTRIES_KEPT) forget(state, state.order.shift() as string);
}

function forget(state: StreamState, id: string): void {
  for (const u of state.uuidsOfEntry.get(id) ?? []) {
    const ids = state.byUuid.get(u);
    ids?.delete(id);
    if (ids?.size === 0) state.byUuid.delete(u);
  }
  state.uuidsOfEntry.delete(id);
}

/** Deletes the entries of `key` naming any of `uuids`; returns how many Redis removed. */
export async function deleteStreamEntriesNaming(redis: Redis, key: string, uuids: ReadonlySet<string>, index: StreamIndex = processStreamIndex): Promise<number> {
  const state = stateOf(index, key);
  for (let from = state.lastId === undefined ? '-' : `(${state.lastId}`; ; ) {
    const entries = await redis.xrange(key, from, '+', 'COUNT', String(READ_COUNT));
    for (const [id, fields] of entries) add(state, id, fields);
    if (entries.length < READ_COUNT) break;
    from = `(${state.lastId}`;
  }
  const theirs = new Set<string>();
  for (const u of uuids) for (const id of state.byUuid.get(u.toLowerCase()) ?? []) theirs.add(id);
  if (theirs.size === 0) return 0;
  const removed = await redis.xdel(key, ...theirs);
  for (const id of theirs) forget(state, id);
  return removed;
}

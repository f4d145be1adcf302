import type { Db } from '../db/types';
import { findSourceIdByWriteKey } from './sources';

interface Entry {
  readonly sourceId: string | undefined;
  readonly expires: number;
}

/**
 * Write-key look-ups on the hot path: every tracking request needs one, and sources change rarely.
 * Known keys are cached for `ttlMs` (one indexed query per key every few seconds), unknown ones for a shorter time (so a new source works within
 * seconds, and a flood of bad keys does not become a flood of queries). Revocation takes effect
 * within `ttlMs`.
 */
export class SourceCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly db: Db,
    private readonly ttlMs = 5_000,
    private readonly negativeTtlMs = 2_000,
    private readonly maxEntries = 10_000,
  ) {}

  async sourceIdFor(writeKey: string): Promise<string | undefined> {
    const now = Date.now();
    const cached = this.entries.get(writeKey);
    if (cached && cached.expires > now) return cached.sourceId;
    let lookup = this.pending.get(writeKey);
    if (!lookup) {
      lookup = findSourceIdByWriteKey(this.db, writeKey).finally(() => this.pending.delete(writeKey));
      this.pending.set(writeKey, lookup);
    }
    const sourceId = await lookup;
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    this.entries.set(writeKey, { sourceId, expires: now + (sourceId ? this.ttlMs : this.negativeTtlMs) });
    return sourceId;
  }
}

import type { Db } from '../db/types';
import { type ActiveSource, allowedOriginsOfActiveSources, findSourceByWriteKey } from './sources';

interface Entry {
  readonly source: ActiveSource | undefined;
  readonly expires: number;
}

/**
 * Write-key look-ups on the hot path: every tracking request needs one, and sources change rarely.
 * Known keys are cached for `ttlMs` (one indexed query per key every few seconds), unknown ones for a shorter time (so a new source works within
 * seconds, and a flood of bad keys does not become a flood of queries). Revocation and a change of
 * a source's allowed origins take effect within `ttlMs`.
 *
 * Bounded against floods: a key that does not have the shape of a write key is refused without a
 * look-up or an entry (a body may carry a 500 KB "key"), and unknown keys live in their own map, so
 * random keys evict only each other, never the sources that exist.
 */
/** What `createSource` makes (`wk_` and 24 random bytes in base64url), with room to spare. */
const WRITE_KEY_SHAPE = /^wk_[A-Za-z0-9_-]{20,80}$/;

export class SourceCache {
  private readonly known = new Map<string, Entry>();
  private readonly unknown = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<ActiveSource | undefined>>();
  private origins: { readonly set: ReadonlySet<string>; readonly expires: number } | undefined;
  private originsLoading: Promise<ReadonlySet<string>> | undefined;

  constructor(
    private readonly db: Db,
    private readonly ttlMs = 5_000,
    private readonly negativeTtlMs = 2_000,
    private readonly maxEntries = 10_000,
  ) {}

  async sourceFor(writeKey: string): Promise<ActiveSource | undefined> {
    if (!WRITE_KEY_SHAPE.test(writeKey)) return undefined;
    const now = Date.now();
    const cached = this.known.get(writeKey) ?? this.unknown.get(writeKey);
    if (cached && cached.expires > now) return cached.source;
    let lookup = this.pending.get(writeKey);
    if (!lookup) {
      lookup = findSourceByWriteKey(this.db, writeKey).finally(() => this.pending.delete(writeKey));
      this.pending.set(writeKey, lookup);
    }
    const source = await lookup;
    const entries = source ? this.known : this.unknown;
    this.known.delete(writeKey);
    this.unknown.delete(writeKey);
    // The oldest entry gives way (Map keeps insertion order), never the whole cache.
    if (entries.size >= this.maxEntries) entries.delete(entries.keys().next().value as string);
    entries.set(writeKey, { source, expires: now + (source ? this.ttlMs : this.negativeTtlMs) });
    return source;
  }

  /**
   * The source id of a write key from the cache alone, without waiting: the id, `null` for a key
   * known not to belong to an active source (or not shaped like one), `undefined` when only
   * `sourceIdFor` can tell (not cached, or expired).
   */
  cachedSourceId(writeKey: string): string | null | undefined {
    if (!WRITE_KEY_SHAPE.test(writeKey)) return null;
    const cached = this.known.get(writeKey) ?? this.unknown.get(writeKey);
    if (!cached || cached.expires <= Date.now()) return undefined;
    return cached.source?.id ?? null;
  }

  /** Entries held (known and unknown keys): bounded by twice `maxEntries`. */
  get size(): number {
    return this.known.size + this.unknown.size;
  }

  async sourceIdFor(writeKey: string): Promise<string | undefined> {
    return (await this.sourceFor(writeKey))?.id;
  }

  /**
   * Whether some active source allows `origin` (or allows any with `*`): the question a CORS
   * preflight asks before it carries a write key. One query for all sources every `ttlMs`.
   */
  async originAllowedBySome(origin: string): Promise<boolean> {
    const now = Date.now();
    let set = this.origins && this.origins.expires > now ? this.origins.set : undefined;
    if (!set) {
      this.originsLoading ??= allowedOriginsOfActiveSources(this.db)
        .then((list) => {
          const loaded = new Set(list);
          this.origins = { set: loaded, expires: Date.now() + this.ttlMs };
          return loaded;
        })
        .finally(() => {
          this.originsLoading = undefined;
        });
      set = await this.originsLoading;
    }
    return set.has('*') || set.has(origin);
  }
}

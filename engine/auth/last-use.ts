import { sql } from 'kysely';
import type { DbOrTrx } from '../db/types';

/** Often enough to find keys nobody uses; rarely enough that polling does not mean a write a call. */
const RECORD_EVERY_MS = 60_000;

/**
 * Records when each API key was last used (so an unused key can be found and revoked), at most
 * once a minute per key and process. Never fails the request it was called for.
 */
export class KeyUseRecorder {
  private readonly lastRecorded = new Map<string, number>();

  constructor(private readonly db: DbOrTrx, private readonly onError: (err: unknown) => void) {}

  record(keyId: string): void {
    const now = Date.now();
    if (now - (this.lastRecorded.get(keyId) ?? 0) < RECORD_EVERY_MS) return;
    this.lastRecorded.set(keyId, now);
    this.db
      .updateTable('app.api_keys')
      .set({ last_used_at: sql<Date>`now()` })
      .where('id', '=', keyId)
      .execute()
      .catch(this.onError);
  }
}

import type { Keys } from '../config';
import type { DbOrTrx } from '../db/types';
import { auditChainKey, entryHash, GENESIS_HASH } from './chain';

export interface AuditProblem {
  /** The entry where the chain breaks (for a removal, the first entry after the gap). */
  readonly seq: string;
  readonly message: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly entries: number;
  /** The last entry: compare it with a copy kept elsewhere to detect a removal at the very end. */
  readonly head: { readonly seq: string; readonly hash: string } | null;
  readonly problems: readonly AuditProblem[];
}

const PAGE = 2_000;
const MAX_PROBLEMS = 100;

/**
 * Walks the chain from the first entry, page by page, recomputing each hash. An edited entry no
 * longer matches its hash; a removed one leaves a gap in the numbers and a previous-hash that
 * points at nothing; an entry inserted with a forged hash fails without the chain key. Removing
 * the newest entries leaves a shorter chain that is still whole: `head` is what to compare with
 * a copy (the engine logs the head with each append).
 */
export async function verifyAuditChain(db: DbOrTrx, keys: Keys): Promise<AuditVerification> {
  const chainKey = auditChainKey(keys);
  const problems: AuditProblem[] = [];
  let expectedSeq = 1n;
  let prevHash: Buffer = GENESIS_HASH;
  let entries = 0;
  let head: AuditVerification['head'] = null;
  let after = 0n;
  for (;;) {
    const page = await db.selectFrom('app.audit_log').selectAll().where('seq', '>', after.toString()).orderBy('seq').limit(PAGE).execute();
    for (const row of page) {
      entries += 1;
      // pg gives int8 as text, PGlite may not: one form for hashing and messages.
      const seqText = String(row.seq);
      const seq = BigInt(seqText);
      const found: string[] = [];
      if (seq !== expectedSeq) {
        found.push(seq > expectedSeq ? `entries ${describeRange(expectedSeq, seq - 1n)} are missing (removed)` : `entry ${seq} is out of order`);
      }
      if (!row.prev_hash.equals(prevHash)) {
        found.push(seq === expectedSeq ? 'its previous-entry hash does not match the entry before it (that entry was edited, or one was removed or inserted)' : 'its previous-entry hash does not match the entry before the gap');
      }
      const recomputed = entryHash(chainKey, {
        seq: seqText,
        at: row.at,
        actor: row.actor,
        action: row.action,
        target: row.target,
        outcome: row.outcome,
        reason: row.reason,
        detail: row.detail,
        prevHash: row.prev_hash,
      });
      if (!recomputed.equals(row.hash)) found.push('its content does not match its hash (edited, or written without the chain key)');
      if (found.length > 0 && problems.length < MAX_PROBLEMS) problems.push({ seq: seqText, message: `entry ${seqText}: ${found.join('; ')}` });
      prevHash = row.hash;
      expectedSeq = seq + 1n;
      head = { seq: seqText, hash: row.hash.toString('base64url') };
    }
    if (page.length < PAGE) break;
    after = BigInt(String(page[page.length - 1]!.seq));
  }
  return { ok: problems.length === 0, entries, head, problems };
}

function describeRange(from: bigint, to: bigint): string {
  return from === to ? `${from}` : `${from} to ${to}`;
}

import { createHmac, hkdfSync } from 'node:crypto';
import type { Keys } from '../config';
import type { AuditOutcome } from '../db/types';
import { canonicalJson } from '../privacy/canonical-json';

/** The first entry's previous hash. */
export const GENESIS_HASH = Buffer.alloc(32);

/**
 * The chain is keyed (HMAC) with a key derived from the pseudonym key, which lives outside the
 * database: someone holding only the database (or a backup of it) can delete or edit entries but
 * cannot recompute a chain that verifies (GDPR Art. 5(2), 32(1)(b)).
 */
export function auditChainKey(keys: Keys): Buffer {
  return Buffer.from(hkdfSync('sha256', keys.pseudonym, Buffer.alloc(0), 'consentflow audit chain v1', 32));
}

/** What an entry's hash covers: every column but the hash itself. */
export interface ChainedEntry {
  readonly seq: string;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly outcome: AuditOutcome;
  readonly reason: string | null;
  readonly detail: Record<string, unknown>;
  readonly prevHash: Buffer;
}

export function entryHash(chainKey: Buffer, entry: ChainedEntry): Buffer {
  const content = canonicalJson([entry.seq, entry.at.toISOString(), entry.actor, entry.action, entry.target, entry.outcome, entry.reason, entry.detail]);
  return createHmac('sha256', chainKey).update(entry.prevHash).update(content, 'utf8').digest();
}

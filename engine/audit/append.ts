import { sql } from 'kysely';
import type { Keys } from '../config';
import type { Transaction as KyselyTransaction } from 'kysely';
import type { AuditOutcome, Database, DbOrTrx } from '../db/types';
import { LONE_SURROGATE } from '../../schemas/well-formed';
import { scrubText } from '../privacy/scrub-text';
import { auditChainKey, entryHash, GENESIS_HASH } from './chain';

export interface AuditEntryInput {
  /** `key:<uuid>` (an admin API key), `cli:uid:<n>` (a shell user), `worker:<queue>`. */
  readonly actor: string;
  /** Dotted, lower case: `subject.export`, `keys.revoke`. */
  readonly action: string;
  /** A keyed subject pseudonym (targets.ts), a request id, a key id: never PII. */
  readonly target?: string | null;
  readonly outcome: AuditOutcome;
  /** The reason stated for a decryption; scrubbed of anything that looks like PII. */
  readonly reason?: string | null;
  /** `{ decrypted: true }` marks a decryption of personal data; method, status, route. No PII. */
  readonly detail?: Record<string, unknown>;
}

/** Any constant: every append takes it, so the entries get consecutive numbers. */
const AUDIT_LOCK = 0x6175_6469;

/**
 * Appends entries at the end of the chain. In the caller's transaction when given one (the entry
 * commits or rolls back with the action it records), else in its own. Appends are serialized by a
 * transaction-scoped advisory lock: admin actions are rare, and consecutive numbers are what lets
 * `audit verify` tell a removal from a gap.
 */
export async function appendAudit(
  db: DbOrTrx,
  keys: Keys,
  entries: readonly AuditEntryInput[],
  log?: HeadLog,
): Promise<{ seq: string; hash: Buffer } | undefined> {
  if (entries.length === 0) return undefined;
  if (db.isTransaction) return appendInTransaction(db as KyselyTransaction<Database>, keys, entries);
  const head = await db.transaction().execute((trx) => appendInTransaction(trx, keys, entries));
  // The head of the chain, in the process log too: a copy outside the database that shows when
  // the newest entries were removed (verify.ts). Only once committed (an entry appended in the
  // caller's transaction may still roll back; the next head logged covers it).
  log?.info({ auditSeq: head.seq, auditHead: head.hash.toString('base64url') }, 'audit entry');
  return head;
}

/** Where the head is logged: any pino logger. */
export interface HeadLog {
  info(fields: Record<string, unknown>, message: string): void;
}

async function appendInTransaction(trx: KyselyTransaction<Database>, keys: Keys, entries: readonly AuditEntryInput[]): Promise<{ seq: string; hash: Buffer }> {
  await sql`select pg_advisory_xact_lock(${AUDIT_LOCK})`.execute(trx);
  const last = await trx.selectFrom('app.audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  const chainKey = auditChainKey(keys);
  let seq = BigInt(last?.seq ?? 0);
  let prevHash: Buffer = last?.hash ?? GENESIS_HASH;
  const rows = [];
  // One clock reading per append keeps entries of one call in order; millisecond precision, so the
  // time reads back exactly as it was hashed.
  const at = new Date();
  for (const entry of entries) {
    seq += 1n;
    const row = {
      seq: seq.toString(),
      at,
      actor: storable(entry.actor, 200),
      action: entry.action,
      target: entry.target == null ? null : storable(entry.target, 200),
      outcome: entry.outcome,
      reason: entry.reason == null ? null : storable(scrubText(entry.reason), 500),
      detail: storableJson(entry.detail ?? {}) as Record<string, unknown>,
      prevHash,
    };
    const hash = entryHash(chainKey, row);
    rows.push({ ...row, hash });
    prevHash = hash;
  }
  await trx
    .insertInto('app.audit_log')
    .values(rows.map(({ prevHash: prev, detail, ...row }) => ({ ...row, detail: JSON.stringify(detail), prev_hash: prev })))
    .execute();
  return { seq: seq.toString(), hash: prevHash };
}

/**
 * What is hashed must be exactly what PostgreSQL gives back, or an honest entry would fail `audit
 * verify`: text without NUL (refused by PostgreSQL) or lone surrogates (stored as U+FFFD), cut by
 * characters (what a `length()` check counts), never in the middle of a surrogate pair.
 */
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

function storable(text: string, maxChars: number): string {
  const clean = text.replace(LONE_SURROGATES, '\uFFFD').replaceAll('\0', '');
  // UTF-16 units never undercount characters: only a text that may be too long is split up.
  if (clean.length <= maxChars) return clean;
  const chars = Array.from(clean);
  return chars.length <= maxChars ? clean : chars.slice(0, maxChars).join('');
}

/** A JSON value as jsonb keeps it: no undefined, dates as text, every string storable. */
function storableJson(value: unknown): unknown {
  const plain: unknown = JSON.parse(JSON.stringify(value) ?? 'null');
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return storable(v, Number.MAX_SAFE_INTEGER);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, inner]) => [storable(k, Number.MAX_SAFE_INTEGER), walk(inner)]));
    return v;
  };
  return walk(plain);
}

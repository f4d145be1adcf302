import { randomUUID } from 'node:crypto';
import type { Config, Keys } from '../../config';
import type { Databases } from '../../db/connect';
import type { Db, VaultDbOrTrx } from '../../db/types';
import type { ErasureOrigin, ErasureRequestsTable } from '../../db/types';
import type { Selectable } from 'kysely';
import { type SubjectIdentifier, subjectKey } from '../../identity/lookup';
import { addToOutbox } from '../../outbox/outbox';
import { queueSealingKey, seal } from '../../queues/sealing';
import type { SealedSubject } from './work';

/**
 * An erasure request is committed to PostgreSQL before it is answered (GDPR Art. 17; Art. 12(3):
 * without undue delay, within one month), with an outbox row that puts it on the erasure queue.
 * The identifier is stored as a blind index only; as given, it is sealed for the processors'
 * webhooks and cleared when the erasure completes.
 */

export type ErasureRequestRow = Selectable<ErasureRequestsTable>;

export interface NewErasure {
  /** As the person or officer gave it, or a profile id (self-service links, retention). */
  readonly identifier: SubjectIdentifier | { readonly profileId: string };
  readonly origin: ErasureOrigin;
  /** Who asked: an API key id, "cli", "self-service link"; never the person's identifier. */
  readonly requestedBy: string;
  /** Also run the deep scan (every column and Redis key) before the receipt. */
  readonly deep?: boolean;
}

export type CreateErasureResult =
  | { readonly ok: true; readonly id: string; readonly created: boolean; readonly state: string }
  | { readonly ok: false; readonly error: string };

export const sealingContext = (requestId: string) => `erasure/${requestId}`;

export function sealSubject(keys: Keys, requestId: string, subject: SealedSubject): string {
  return JSON.stringify(seal(queueSealingKey(keys.master), sealingContext(requestId), subject));
}

/** The strongest identifier the vault holds for a profile (an address over a userId over a cookie). */
async function identityOfProfile(vault: VaultDbOrTrx, profileId: string): Promise<{ kind: 'email' | 'user' | 'anonymous'; hash: Buffer } | undefined> {
  const rows = await vault.selectFrom('vault.identities').select(['kind', 'hash']).where('profile_id', '=', profileId).execute();
  for (const kind of ['email', 'user', 'anonymous'] as const) {
    const row = rows.find((r) => r.kind === kind);
    if (row) return { kind, hash: row.hash };
  }
  return undefined;
}

export async function createErasureRequest(databases: Databases, config: Config, keys: Keys, input: NewErasure): Promise<CreateErasureResult> {
  const db = databases.db;
  const key = 'profileId' in input.identifier ? await identityOfProfile(databases.vaultDb, input.identifier.profileId) : subjectKey(keys, input.identifier);
  if (!key) {
    return {
      ok: false,
      error: 'profileId' in input.identifier ? 'nobody with that profile id is known (already erased?)' : 'the identifier is empty or malformed after normalization (expected an email address, a userId or an anonymousId)',
    };
  }
  const kind = key.kind as 'email' | 'user' | 'anonymous';
  return db.transaction().execute(async (trx): Promise<CreateErasureResult> => {
    // Asking twice while the first request runs returns the first (erasing twice is harmless anyway).
    const open = await trx
      .selectFrom('app.erasure_requests')
      .select(['id', 'state'])
      .where('identifier_kind', '=', kind)
      .where('identifier_hash', '=', key.hash)
      .where('state', 'in', ['pending', 'running'])
      .executeTakeFirst();
    if (open) return { ok: true, id: open.id, created: false, state: open.state };
    const id = randomUUID();
    const now = new Date();
    const given = input.identifier;
    const subject: SealedSubject = 'email' in given ? { email: given.email } : 'userId' in given ? { userId: given.userId } : 'anonymousId' in given ? { anonymousId: given.anonymousId } : {};
    const inserted = await trx
      .insertInto('app.erasure_requests')
      .values({
        id,
        identifier_kind: kind,
        identifier_hash: key.hash,
        requested_by: input.requestedBy.slice(0, 200),
        origin: input.origin,
        deadline_at: new Date(now.getTime() + config.privacy.erasure.deadlineDays * 86_400_000),
        deep_verify: input.deep ?? false,
        subject_sealed: sealSubject(keys, id, subject),
      })
      .onConflict((oc) => oc.columns(['identifier_kind', 'identifier_hash']).where('state', 'in', ['pending', 'running']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) {
      const raced = await trx.selectFrom('app.erasure_requests').select(['id', 'state']).where('identifier_hash', '=', key.hash).where('state', 'in', ['pending', 'running']).executeTakeFirst();
      if (raced) return { ok: true, id: raced.id, created: false, state: raced.state };
    }
    await addToOutbox(trx, [{ queue: 'erasure', job: 'erase', jobId: `erase-${id}`, payload: { requestId: id }, runAt: now }]);
    return { ok: true, id, created: true, state: 'pending' };
  });
}

export async function erasureRequest(db: Db, id: string): Promise<ErasureRequestRow | undefined> {
  return db.selectFrom('app.erasure_requests').selectAll().where('id', '=', id).executeTakeFirst();
}

/** What an operator or the person may see of a request: its progress and receipt, no identifier. */
export function erasureStatus(row: ErasureRequestRow) {
  return {
    id: row.id,
    state: row.state,
    step: row.step,
    origin: row.origin,
    requestedAt: row.requested_at.toISOString(),
    deadlineAt: row.deadline_at.toISOString(),
    overdue: row.state !== 'completed' && row.deadline_at.getTime() < Date.now(),
    completedAt: row.completed_at?.toISOString() ?? null,
    attempts: row.attempts,
    lastError: row.last_error,
    receipt: row.receipt,
    receiptSignature: row.receipt_signature,
  };
}

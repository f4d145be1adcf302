import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Config, Keys } from '../../config';
import type { Databases } from '../../db/connect';
import type { IdentityKind, VaultDatabase, VaultDbOrTrx } from '../../db/types';
import type { IdentityKey } from '../../identity/keys';
import type { Logger } from '../../log/logger';
import type { Queues } from '../../queues/producer';
import { queueSealingKey, unseal } from '../../queues/sealing';
import { deepScan } from './deep-scan';
import { purgeApp } from './purge-app';
import { purgeRedis } from './purge-redis';
import type { ErasureReceipt } from './receipt';
import { finish } from './finish';
import { type ErasureRequestRow, erasureRequest, sealingContext, sealSubject } from './request';
import { resolveAndTombstone, shredVault } from './resolve-step';
import { uuidsOf, type Verification, verifyByIndex } from './verify';
import { callErasureWebhooks, type WebhookAnswer } from './webhooks';
import { ErasureWork, SealedSubject } from './work';
import { saveStep } from './progress';
import { applyErasureSuppression } from './suppress-step';
import { appendAudit } from '../../audit/append';
import { erasureTarget } from '../../audit/targets';

/**
 * The erasure worker's job (GDPR Art. 17): eight steps, each committed with its step number, so a
 * crash at any point and a retry end in the same complete result, and erasing twice is harmless.
 * Steps: 1 resolve every profile and tombstone every identifier; 2 destroy the data key and the vault
 * rows; 3 delete every pseudonymous row; 4 remove the person's jobs from Redis; 5 inform processors
 * (Art. 19); 6 suppress the address (optional); 7 verify by index; 8 sign the receipt and forget
 * the identifiers the request itself held.
 */

export interface ErasureDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly databases: Databases;
  readonly queues: Queues;
  readonly redis: Redis;
  readonly log: Logger;
}

export interface ErasureRunOptions {
  /** Tests: called after each step is committed (throw to play a crash there). */
  readonly afterStep?: (step: number) => void | Promise<void>;
}

export type ErasureRunOutcome =
  | { readonly outcome: 'completed'; readonly receipt: ErasureReceipt }
  | { readonly outcome: 'already_completed' | 'unknown_request' };

/** Found remains after a second purge; the job retries (and the request shows the findings). */
export class ErasureIncompleteError extends Error {
  override readonly name = 'ErasureIncompleteError';
}

/** One vault transaction (the vault may be its own database: VAULT_DATABASE_URL). */
export async function inVault<T>(databases: Databases, work: (vault: VaultDbOrTrx) => Promise<T>): Promise<T> {
  return (databases.vaultDb as Kysely<VaultDatabase>).transaction().execute((trx) => work(trx));
}

export const addCounts = (a: Record<string, number>, b: Record<string, number>) => {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
};

export async function runErasure(deps: ErasureDeps, requestId: string, options: ErasureRunOptions = {}): Promise<ErasureRunOutcome> {
  const { db } = deps.databases;
  let row = await erasureRequest(db, requestId);
  if (!row) return { outcome: 'unknown_request' };
  if (row.state === 'completed') return { outcome: 'already_completed' };
  await db.updateTable('app.erasure_requests').set({ state: 'running', attempts: row.attempts + 1, updated_at: new Date() }).where('id', '=', requestId).execute();
  try {
    const receipt = await runSteps(deps, row, options);
    return { outcome: 'completed', receipt };
  } catch (err) {
    const message = err instanceof Error ? `${err.name}: ${err.message}` : 'error';
    row = await erasureRequest(db, requestId);
    if (row && row.state !== 'completed') {
      await db
        .updateTable('app.erasure_requests')
        .set({ state: err instanceof ErasureIncompleteError ? 'failed' : 'running', last_error: message.slice(0, 1000), updated_at: new Date() })
        .where('id', '=', requestId)
        .execute();
    }
    throw err;
  }
}

async function runSteps(deps: ErasureDeps, initial: ErasureRequestRow, options: ErasureRunOptions): Promise<ErasureReceipt> {
  const { db } = deps.databases;
  const { config, keys } = deps;
  const id = initial.id;
  const sealingKey = queueSealingKey(keys.master);
  const after = async (step: number) => options.afterStep?.(step);
  let work = ErasureWork.parse(initial.work ?? {});
  let counts: Record<string, number> = { ...initial.counts };
  let step = initial.step;
  let subject: SealedSubject = initial.subject_sealed ? SealedSubject.parse(unseal(sealingKey, sealingContext(id), initial.subject_sealed)) : {};

  if (step < 1) {
    if (!initial.identifier_kind || !initial.identifier_hash) throw new Error('the request has no identifier left to resolve');
    const asked: IdentityKey = {
      kind: initial.identifier_kind as IdentityKind,
      hash: initial.identifier_hash,
      id: `${initial.identifier_kind}:${initial.identifier_hash.toString('hex')}`,
    };
    const resolved = await inVault(deps.databases, (vault) => resolveAndTombstone(vault, keys, asked, id, config.privacy.erasure.tombstoneDays));
    work = { ...work, profileIds: resolved.profileIds, identities: resolved.identities, vaultCounts: resolved.vaultCounts };
    if (resolved.email && !subject.email) subject = { ...subject, email: resolved.email };
    await saveStep(db, id, (step = 1), { work: JSON.stringify(work), subject_sealed: sealSubject(keys, id, subject) });
    await after(1);
  }
  if (step < 2) {
    await inVault(deps.databases, (vault) => shredVault(vault, keys, work.profileIds));
    // Counted in step 1, before the rows went: a resumed step 2 reports the same figures.
    counts = addCounts(counts, work.vaultCounts);
    await saveStep(db, id, (step = 2), { counts: JSON.stringify(counts) });
    await after(2);
  }
  if (step < 3) {
    await db.transaction().execute(async (trx) => {
      const purged = await purgeApp(trx, keys.pseudonym, work.profileIds);
      work = { ...work, sendIds: purged.sendIds, enrolmentIds: purged.enrolmentIds, confirmationIds: purged.confirmationIds, jobs: purged.jobs };
      counts = addCounts(counts, purged.counts);
      await saveStep(trx, id, (step = 3), { work: JSON.stringify(work), counts: JSON.stringify(counts) });
    });
    await after(3);
  }
  const purgeJobs = async () => {
    const purged = await purgeRedis(deps.queues, deps.redis, sealingKey, keys.pseudonym, {
      jobs: work.jobs,
      identityIds: new Set(work.identities.map((i) => `${i.kind}:${i.hash}`)),
      uuids: new Set(uuidsOf(work)),
    });
    // A job running right now cannot be removed: the step runs again on the job's next attempt.
    if (purged.busy > 0) throw new Error(`${purged.busy} of the person's jobs are running; removing them again on the next attempt`);
    return purged;
  };
  if (step < 4) {
    const purged = await purgeJobs();
    counts = addCounts(counts, { redis_jobs: purged.removed, redis_events_in_batches: purged.eventsRemoved });
    await saveStep(db, id, (step = 4), { counts: JSON.stringify(counts) });
    await after(4);
  }
  let webhooks = (initial.webhooks ?? []) as WebhookAnswer[];
  if (step < 5) {
    const { webhooks: urls, webhookSecret } = config.privacy.erasure;
    if (urls.length > 0) webhooks = await callErasureWebhooks(urls, webhookSecret, id, subject, webhooks);
    await db.transaction().execute(async (trx) => {
      await saveStep(trx, id, (step = 5), { webhooks: JSON.stringify(webhooks) });
      // The identifier was decrypted to tell the processors (Art. 19): audited like any decryption
      // outside the email worker (DESIGN.md invariant 5).
      if (urls.length > 0) {
        await appendAudit(trx, keys, [
          {
            actor: 'worker:erasure',
            action: 'erasure.notify_processors',
            target: erasureTarget(id),
            outcome: webhooks.every((w) => w.ok) ? 'ok' : 'failed',
            reason: 'GDPR Art. 19: processors told of an erasure',
            detail: { decrypted: true, processors: urls.length },
          },
        ]);
      }
    });
    await after(5);
  }
  const emailHashes = work.identities.filter((i) => i.kind === 'email').map((i) => Buffer.from(i.hash, 'hex'));
  if (step < 6) {
    await applyErasureSuppression(db, config.privacy.erasure.suppress, emailHashes);
    await saveStep(db, id, (step = 6), {});
    await after(6);
  }
  // Resumed after step 7: its result is the one it recorded (read only then).
  let verification = step >= 7 ? ((await erasureRequest(db, id))?.verification as Verification | undefined) : undefined;
  if (step < 7) {
    verification = await verifyByIndex(deps.databases, deps.queues, work);
    if (!verification.clean) {
      // Something came back between the steps (a race with a batch in flight): purge once more.
      deps.log.warn({ requestId: id, findings: verification.findings }, 'erasure found remains; purging again');
      await db.transaction().execute(async (trx) => {
        const again = await purgeApp(trx, keys.pseudonym, work.profileIds);
        counts = addCounts(counts, again.counts);
        await saveStep(trx, id, 6, { counts: JSON.stringify(counts) });
      });
      await purgeJobs();
      verification = await verifyByIndex(deps.databases, deps.queues, work);
    }
    if (initial.deep_verify) {
      const deep = await deepScan(deps.databases, deps.redis, config.queuePrefix, sealingKey, {
        needles: needlesOf(work, subject),
        allowedSuppressionHashes: config.privacy.erasure.suppress ? emailHashes.map((h) => h.toString('hex')) : [],
        requestId: id,
      });
      verification = { ...verification, clean: verification.clean && deep.clean, deep };
    }
    // Not clean: the step stays undone, so the next attempt purges and verifies again.
    await saveStep(db, id, verification.clean ? 7 : 6, { verification: JSON.stringify(verification) });
    if (!verification.clean) throw new ErasureIncompleteError(`verification found remains: ${[...verification.findings, ...(verification.deep?.findings ?? [])].map((f) => `${f.store} ${f.where} (${f.count})`).join(', ')}`);
    step = 7;
    await after(7);
  }
  return finish(deps, id, counts, work, webhooks, verification as Verification);
}

/** Everything the deep scan looks for: identifiers as given, pseudonyms, blind indexes, job ids. */
export function needlesOf(work: ErasureWork, subject: SealedSubject): string[] {
  return [
    ...uuidsOf(work),
    ...work.identities.map((i) => i.hash),
    ...work.jobs.map((j) => j.id),
    ...[subject.email, subject.userId, subject.anonymousId].filter((v): v is string => typeof v === 'string' && v.length > 0),
  ];
}

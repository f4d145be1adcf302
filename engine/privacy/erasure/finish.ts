import { sql } from 'kysely';
import type { Config, Keys } from '../../config';
import type { Databases } from '../../db/connect';
import { processorAnswers, receiptKey, signReceipt, type ErasureReceipt } from './receipt';
import type { ErasureRequestRow } from './request';
import type { Verification } from './verify';
import type { WebhookAnswer } from './webhooks';
import type { ErasureWork } from './work';

/**
 * Step 8: the signed receipt, and the request forgets whom it was about (DESIGN.md invariant 4):
 * its identifier, the sealed subject and the work are cleared; only the receipt stays.
 */

export interface Finishing {
  readonly id: string;
  readonly counts: Record<string, number>;
  readonly work: ErasureWork;
  readonly webhooks: WebhookAnswer[];
  readonly verification: Verification;
}

interface FinishDeps {
  readonly config: Config;
  readonly keys: Keys;
  readonly databases: Databases;
}

function receiptOf(deps: FinishDeps, row: ErasureRequestRow, f: Finishing, completedAt: Date): ErasureReceipt {
  const { vault_data_keys: dataKeys = 0, ...removed } = f.counts;
  return {
    format: 'consentflow-erasure-receipt/1',
    requestId: f.id,
    origin: row.origin,
    requestedAt: row.requested_at.toISOString(),
    completedAt: completedAt.toISOString(),
    deadlineAt: row.deadline_at.toISOString(),
    profilesErased: f.work.profileIds.length,
    removed,
    dataKeysDestroyed: dataKeys,
    verification: {
      clean: f.verification.clean,
      checkedColumns: f.verification.checkedColumns,
      checkedJobs: f.verification.checkedJobs,
      identifiers: f.verification.identifiers,
      findings: f.verification.findings,
      deep: f.verification.deep ? { clean: f.verification.deep.clean, findings: f.verification.deep.findings } : null,
    },
    processors: processorAnswers(f.webhooks),
    suppressed: deps.config.privacy.erasure.suppress && f.work.identities.some((i) => i.kind === 'email'),
    tombstonesExpireAt: new Date(row.requested_at.getTime() + deps.config.privacy.erasure.tombstoneDays * 86_400_000).toISOString(),
  };
}

export async function finish(deps: FinishDeps, id: string, counts: Record<string, number>, work: ErasureWork, webhooks: WebhookAnswer[], verification: Verification): Promise<ErasureReceipt> {
  const receipts = await finishMany(deps, [{ id, counts, work, webhooks, verification }]);
  return receipts.get(id) as ErasureReceipt;
}

/** Step 8 for several requests in one transaction of three statements (grouped erasures). */
export async function finishMany(deps: FinishDeps, requests: readonly Finishing[]): Promise<Map<string, ErasureReceipt>> {
  const out = new Map<string, ErasureReceipt>();
  if (requests.length === 0) return out;
  return deps.databases.db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('app.erasure_requests')
      .selectAll()
      .where('id', 'in', requests.map((r) => r.id))
      .orderBy('id')
      .forUpdate()
      .execute();
    const rowOf = new Map(rows.map((r) => [r.id, r]));
    const completedAt = new Date();
    const signingKey = receiptKey(deps.keys.linkSigning);
    const updates: Array<{ id: string; receipt: string; signature: string; verification: string }> = [];
    for (const f of requests) {
      const row = rowOf.get(f.id);
      if (!row) throw new Error(`erasure request ${f.id} is gone`);
      if (row.state === 'completed' && row.receipt) {
        out.set(f.id, row.receipt as unknown as ErasureReceipt);
        continue;
      }
      const receipt = receiptOf(deps, row, f, completedAt);
      out.set(f.id, receipt);
      updates.push({
        id: f.id,
        receipt: JSON.stringify(receipt),
        signature: signReceipt(signingKey, receipt),
        verification: JSON.stringify({ clean: f.verification.clean, checkedColumns: f.verification.checkedColumns }),
      });
    }
    if (updates.length > 0) {
      await sql`update app.erasure_requests r set state = 'completed', step = 8, receipt = v.receipt::jsonb, receipt_signature = v.signature,
          completed_at = ${completedAt}, identifier_hash = null, subject_sealed = null, work = '{}'::jsonb,
          verification = v.verification::jsonb, last_error = null, updated_at = ${completedAt}
        from unnest(${updates.map((u) => u.id)}::uuid[], ${updates.map((u) => u.receipt)}::text[], ${updates.map((u) => u.signature)}::text[], ${updates.map((u) => u.verification)}::text[])
          as v(id, receipt, signature, verification)
        where r.id = v.id`.execute(trx);
    }
    return out;
  });
}

import type { Kysely } from 'kysely';
import { appendAudit } from '../../audit/append';
import { erasureTarget } from '../../audit/targets';
import type { Database, IdentityKind } from '../../db/types';
import { queueSealingKey, unseal } from '../../queues/sealing';
import { finishMany } from './finish';
import { saveSteps } from './progress';
import { applyErasureSuppression } from './suppress-step';
import { purgeAppByProfile, sumPurges, type AppPurge } from './purge-app';
import { purgeRedisMany } from './purge-redis';
import { type ErasureRequestRow, sealingContext, sealSubject } from './request';
import { resolveAndTombstoneMany, shredVault } from './resolve-step';
import { addCounts, type ErasureDeps, type ErasureRunOptions, type ErasureRunOutcome, inVault, runErasure } from './run-erasure';
import { uuidsOf, type Verification, verifyByIndex } from './verify';
import { callErasureWebhooks, type WebhookAnswer } from './webhooks';
import { ErasureWork, SealedSubject } from './work';

/**
 * Grouped erasures: the eight steps of run-erasure.ts for many requests at once, each step in as
 * many statements as for one request (the cost of a small erasure is its round trips, not its rows).
 * Every request still records each step, its own counts and its own receipt, so a crash at any step
 * leaves each request where run-erasure.ts resumes it alone; the job of each retries it alone.
 *
 * Only fresh requests (nothing done yet, no deep scan) are grouped; the others run one by one. A
 * person named by two requests of one group is erased once; the rows are counted in the first
 * request's receipt, as if the two had run one after the other.
 */

export type Settled = { readonly ok: true; readonly outcome: ErasureRunOutcome } | { readonly ok: false; readonly error: unknown };

const isFresh = (r: ErasureRequestRow) => r.state !== 'completed' && r.step === 0 && !r.deep_verify && r.identifier_kind !== null && r.identifier_hash !== null;

export async function runErasureGroup(deps: ErasureDeps, requestIds: readonly string[], options: ErasureRunOptions = {}): Promise<Map<string, Settled>> {
  const { db } = deps.databases;
  const settled = new Map<string, Settled>();
  const rows = requestIds.length === 0 ? [] : await db.selectFrom('app.erasure_requests').selectAll().where('id', 'in', [...requestIds]).execute();
  const fresh = rows.filter(isFresh);
  const alone = requestIds.filter((id) => !fresh.some((r) => r.id === id));
  if (fresh.length === 1) alone.push((fresh.pop() as ErasureRequestRow).id);
  if (fresh.length > 0) {
    try {
      for (const [id, result] of await runSteps(deps, fresh, options)) settled.set(id, result);
    } catch (err) {
      await recordFailure(db, fresh.map((r) => r.id), err);
      for (const r of fresh) settled.set(r.id, { ok: false, error: err });
    }
  }
  for (const id of alone) {
    try {
      settled.set(id, { ok: true, outcome: await runErasure(deps, id, options) });
    } catch (error) {
      settled.set(id, { ok: false, error });
    }
  }
  return settled;
}

async function recordFailure(db: Kysely<Database>, ids: readonly string[], err: unknown): Promise<void> {
  const message = err instanceof Error ? `${err.name}: ${err.message}` : 'error';
  await db
    .updateTable('app.erasure_requests')
    .set({ state: 'running', last_error: `grouped: ${message}`.slice(0, 1000), updated_at: new Date() })
    .where('id', 'in', [...ids])
    .where('state', '<>', 'completed')
    .execute();
}

interface Member {
  readonly id: string;
  work: ErasureWork;
  counts: Record<string, number>;
  subject: SealedSubject;
  webhooks: WebhookAnswer[];
}

async function runSteps(deps: ErasureDeps, rows: readonly ErasureRequestRow[], options: ErasureRunOptions): Promise<Map<string, Settled>> {
  const { db } = deps.databases;
  const { config, keys } = deps;
  const after = async (step: number) => options.afterStep?.(step);
  const ids = rows.map((r) => r.id);
  await db.updateTable('app.erasure_requests').set((eb) => ({ state: 'running', attempts: eb('attempts', '+', 1), updated_at: new Date() })).where('id', 'in', ids).execute();
  const sealingKey = queueSealingKey(keys.master);
  const dropped = new Map<string, Settled>();
  let members: Member[] = rows.map((r) => ({
    id: r.id,
    work: ErasureWork.parse(r.work ?? {}),
    counts: { ...(r.counts as Record<string, number>) },
    // The identifiers as given, for the processors' webhooks.
    subject: r.subject_sealed ? SealedSubject.parse(unseal(sealingKey, sealingContext(r.id), r.subject_sealed)) : {},
    webhooks: [],
  }));

  // 1: resolve every profile and tombstone every identifier.
  const asked = rows.map((r) => {
    const hash = r.identifier_hash as Buffer;
    return { requestId: r.id, key: { kind: r.identifier_kind as IdentityKind, hash, id: `${r.identifier_kind}:${hash.toString('hex')}` } };
  });
  const resolved = await inVault(deps.databases, (vault) => resolveAndTombstoneMany(vault, keys, asked, config.privacy.erasure.tombstoneDays));
  members.forEach((m, i) => {
    const r = resolved[i];
    if (!r) return;
    m.work = { ...m.work, profileIds: r.profileIds, identities: r.identities, vaultCounts: r.vaultCounts };
    if (r.email && !m.subject.email) m.subject = { ...m.subject, email: r.email };
  });
  await saveSteps(db, 1, members.map((m) => ({ id: m.id, work: JSON.stringify(m.work), subject_sealed: sealSubject(keys, m.id, m.subject) })));
  await after(1);

  // 2: crypto-shredding.
  const allProfiles = [...new Set(members.flatMap((m) => m.work.profileIds))];
  await inVault(deps.databases, (vault) => shredVault(vault, keys, allProfiles));
  for (const m of members) m.counts = addCounts(m.counts, m.work.vaultCounts);
  await saveSteps(db, 2, members.map((m) => ({ id: m.id, counts: JSON.stringify(m.counts) })));
  await after(2);

  // 3: the pseudonymous rows, each profile's counted for the first request that named it.
  await db.transaction().execute(async (trx) => {
    const byProfile = await purgeAppByProfile(trx, keys.pseudonym, allProfiles);
    const claimed = new Set<string>();
    for (const m of members) {
      const own = m.work.profileIds.filter((p) => !claimed.has(p));
      for (const p of own) claimed.add(p);
      const purged = sumPurges(own.map((p) => byProfile.get(p)).filter((p): p is AppPurge => p !== undefined));
      m.work = { ...m.work, sendIds: purged.sendIds, enrolmentIds: purged.enrolmentIds, confirmationIds: purged.confirmationIds, jobs: purged.jobs };
      m.counts = addCounts(m.counts, purged.counts);
    }
    await saveSteps(trx, 3, members.map((m) => ({ id: m.id, work: JSON.stringify(m.work), counts: JSON.stringify(m.counts) })));
  });
  await after(3);

  // 4: Redis, one pass for everyone.
  const purged = await purgeRedisMany(
    deps.queues,
    deps.redis,
    sealingKey,
    keys.pseudonym,
    members.map((m) => ({ jobs: m.work.jobs, identityIds: new Set(m.work.identities.map((i) => `${i.kind}:${i.hash}`)), uuids: new Set(uuidsOf(m.work)) })),
  );
  members.forEach((m, i) => {
    const p = purged.each[i];
    if (p) m.counts = addCounts(m.counts, { redis_jobs: p.removed, redis_events_in_batches: p.eventsRemoved });
  });
  // A job running right now cannot be removed: its request leaves the group at step 3, and its
  // job's retry runs step 4 again alone. The others go on.
  const busy = members.filter((_, i) => (purged.each[i]?.busy ?? 0) > 0);
  if (busy.length > 0) {
    const error = new Error('some of the person\'s jobs are running; removing them again on the next attempt');
    await recordFailure(db, busy.map((m) => m.id), error);
    for (const m of busy) dropped.set(m.id, { ok: false, error });
    members = members.filter((m) => !busy.includes(m));
  }
  await saveSteps(db, 4, members.map((m) => ({ id: m.id, counts: JSON.stringify(m.counts) })));
  await after(4);

  // 5: processors (Art. 19), told of each request at once; decrypting the address is audited.
  const { webhooks: urls, webhookSecret } = config.privacy.erasure;
  if (urls.length > 0) {
    await Promise.all(members.map(async (m) => (m.webhooks = await callErasureWebhooks(urls, webhookSecret, m.id, m.subject, []))));
    await db.transaction().execute(async (trx) => {
      await saveSteps(trx, 5, members.map((m) => ({ id: m.id, webhooks: JSON.stringify(m.webhooks) })));
      await appendAudit(
        trx,
        keys,
        members.map((m) => ({
          actor: 'worker:erasure',
          action: 'erasure.notify_processors',
          target: erasureTarget(m.id),
          outcome: m.webhooks.every((w) => w.ok) ? 'ok' : 'failed',
          reason: 'GDPR Art. 19: processors told of an erasure',
          detail: { decrypted: true, processors: urls.length },
        })),
      );
    });
  } else {
    await saveSteps(db, 5, members.map((m) => ({ id: m.id })));
  }
  await after(5);

  // 6: the suppression hash of every address.
  const emailHashes = [...new Set(members.flatMap((m) => m.work.identities.filter((i) => i.kind === 'email').map((i) => i.hash)))].map((h) => Buffer.from(h, 'hex'));
  await applyErasureSuppression(db, config.privacy.erasure.suppress, emailHashes);
  await saveSteps(db, 6, members.map((m) => ({ id: m.id })));
  await after(6);

  // 7: verified by index for everyone at once. Clean for all is clean for each; anything found
  // cannot be told apart here, so each request is verified (and purged again) alone on its retry.
  const union: ErasureWork = ErasureWork.parse({
    profileIds: members.flatMap((m) => m.work.profileIds),
    identities: members.flatMap((m) => m.work.identities),
    sendIds: members.flatMap((m) => m.work.sendIds),
    enrolmentIds: members.flatMap((m) => m.work.enrolmentIds),
    confirmationIds: members.flatMap((m) => m.work.confirmationIds),
    jobs: members.flatMap((m) => m.work.jobs),
  });
  const verified = await verifyByIndex(deps.databases, deps.queues, union);
  if (!verified.clean) throw new Error(`grouped verification found remains (${verified.findings.map((f) => `${f.store} ${f.where}`).join(', ')}); each request is verified alone on its retry`);
  const verificationOf = (m: Member): Verification => ({
    clean: true,
    checkedColumns: verified.checkedColumns,
    checkedJobs: m.work.jobs.length,
    identifiers: uuidsOf(m.work).length + m.work.identities.length,
    findings: [],
  });
  await saveSteps(db, 7, members.map((m) => ({ id: m.id, verification: JSON.stringify(verificationOf(m)) })));
  await after(7);

  // 8: the signed receipts.
  const receipts = await finishMany(
    deps,
    members.map((m) => ({ id: m.id, counts: m.counts, work: m.work, webhooks: m.webhooks, verification: verificationOf(m) })),
  );
  const settled = new Map<string, Settled>(dropped);
  for (const m of members) settled.set(m.id, { ok: true, outcome: { outcome: 'completed', receipt: receipts.get(m.id) } as ErasureRunOutcome });
  return settled;
}

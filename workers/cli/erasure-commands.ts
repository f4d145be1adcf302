import type { Command } from 'commander';
import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { type SubjectIdentifier, subjectIdentifierOf, subjectKey } from '../../engine/identity/lookup';
import { relayOutbox } from '../../engine/outbox/outbox';
import { deepScan } from '../../engine/privacy/erasure/deep-scan';
import { receiptKey, verifyReceipt } from '../../engine/privacy/erasure/receipt';
import { createErasureRequest, erasureRequest, erasureStatus, sealingContext } from '../../engine/privacy/erasure/request';
import { needlesOf } from '../../engine/privacy/erasure/run-erasure';
import { verifyByIndex } from '../../engine/privacy/erasure/verify';
import { ErasureWork, SealedSubject } from '../../engine/privacy/erasure/work';
import { queueSealingKey, unseal } from '../../engine/queues/sealing';
import { openServices } from '../../engine/runtime/services';
import type { CommandContext } from './commands';
import { erasureTarget } from '../../engine/audit/targets';
import { auditCommand, cliActor } from './audit-actor';

/**
 * `consentflow subject erase | erase-status | verify-erasure`: a privacy officer's side of GDPR
 * Art. 17 on the command line. The erasure itself is done by the erasure worker, as for the API.
 */

interface IdentifierOptions {
  email?: string;
  userId?: string;
  anonymousId?: string;
}

function identifierOf(options: IdentifierOptions, required: boolean): SubjectIdentifier | undefined {
  if (!required && [options.email, options.userId, options.anonymousId].every((v) => v === undefined)) return undefined;
  const id = subjectIdentifierOf(options);
  if (!id) throw new AppError('BAD_REQUEST', 'give exactly one of --email, --user-id, --anonymous-id');
  return id;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function requestIdOf(id: string): string {
  if (!UUID.test(id)) throw new AppError('BAD_REQUEST', `'${id}' is not an erasure request id (expected a uuid, as \`subject erase\` prints it)`);
  return id.toLowerCase();
}

async function withServices<T>(ctx: CommandContext, fn: (services: Awaited<ReturnType<typeof openServices>>) => Promise<T>): Promise<T> {
  const keys = loadKeys(ctx.config, ctx.log);
  const services = await openServices({ config: ctx.config, keys, log: ctx.log, searchPath: ctx.env.PATH ?? '' });
  try {
    return await fn(services);
  } finally {
    await services.releasers.releaseAll(ctx.log, ctx.config.shutdownTimeoutMs);
  }
}

async function eraseCommand(ctx: CommandContext, options: IdentifierOptions & { yes?: boolean; deep?: boolean; wait?: string | boolean; json?: boolean }): Promise<number> {
  const identifier = identifierOf(options, true) as SubjectIdentifier;
  if (!options.yes) {
    throw new AppError('BAD_REQUEST', 'erasure cannot be undone: add --yes to confirm that this person\'s data is to be destroyed');
  }
  const waitSeconds = options.wait === undefined || options.wait === false ? 0 : options.wait === true ? 120 : Number(options.wait);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) throw new AppError('BAD_REQUEST', `--wait '${String(options.wait)}': expected a number of seconds`);
  return withServices(ctx, async (services) => {
    const created = await createErasureRequest(services.databases, ctx.config, services.keys, { identifier, origin: 'cli', requestedBy: cliActor(), deep: options.deep ?? false });
    if (!created.ok) throw new AppError('VALIDATION_FAILED', created.error);
    await auditCommand(services.databases.db, services.keys, { action: 'subject.erase', target: erasureTarget(created.id), outcome: 'ok', detail: { created: created.created } }, ctx.log);
    await relayOutbox(services.databases.db, services.queues);
    if (waitSeconds > 0) {
      const until = Date.now() + waitSeconds * 1000;
      for (;;) {
        const row = await erasureRequest(services.databases.db, created.id);
        if (row?.state === 'completed' || Date.now() > until) {
          const status = row ? erasureStatus(row) : { id: created.id };
          ctx.print(options.json ? JSON.stringify(status) : row?.state === 'completed' ? `erasure ${created.id} completed; receipt: ${JSON.stringify(row.receipt)}` : `erasure ${created.id} not completed after ${waitSeconds} s (is an erasure worker running?)`);
          return row?.state === 'completed' ? 0 : 4;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    if (options.json) ctx.print(JSON.stringify({ id: created.id, state: created.state, created: created.created }));
    else ctx.print(`${created.created ? 'erasure requested' : 'an erasure of this person is already under way'}: ${created.id} (see \`consentflow subject erase-status ${created.id}\`)`);
    return 0;
  });
}

async function statusCommand(ctx: CommandContext, id: string, options: { json?: boolean }): Promise<number> {
  const requestId = requestIdOf(id);
  return withServices(ctx, async (services) => {
    const row = await erasureRequest(services.databases.db, requestId);
    if (!row) throw new AppError('NOT_FOUND', `no erasure request ${requestId}`);
    const status = erasureStatus(row);
    const signatureValid = row.receipt && row.receipt_signature ? verifyReceipt(receiptKey(services.keys.linkSigning), row.receipt, row.receipt_signature) : null;
    if (options.json) ctx.print(JSON.stringify({ ...status, signatureValid }));
    else {
      ctx.print(`erasure ${status.id}: ${status.state} (step ${status.step} of 8), requested ${status.requestedAt}, deadline ${status.deadlineAt}${status.overdue ? ' (OVERDUE)' : ''}`);
      if (status.lastError) ctx.print(`last error: ${status.lastError}`);
      if (status.receipt) ctx.print(`receipt (${signatureValid ? 'signature valid' : 'SIGNATURE INVALID'}): ${JSON.stringify(status.receipt, null, 2)}`);
    }
    return 0;
  });
}

/**
 * Checks again that nothing of the person is left. While the request runs, for everything it knows;
 * once completed the request has forgotten whom it was about, so the identifier is given again.
 */
async function verifyCommand(ctx: CommandContext, id: string, options: IdentifierOptions & { deep?: boolean; json?: boolean }): Promise<number> {
  const requestId = requestIdOf(id);
  const given = identifierOf(options, false);
  return withServices(ctx, async (services) => {
    const row = await erasureRequest(services.databases.db, requestId);
    if (!row) throw new AppError('NOT_FOUND', `no erasure request ${requestId}`);
    const sealingKey = queueSealingKey(services.keys.master);
    let work = ErasureWork.parse(row.work ?? {});
    let subject: SealedSubject = row.subject_sealed ? SealedSubject.parse(unseal(sealingKey, sealingContext(requestId), row.subject_sealed)) : {};
    if (given) {
      const key = subjectKey(services.keys, given);
      if (!key) throw new AppError('VALIDATION_FAILED', 'the identifier is empty or malformed after normalization');
      work = { ...work, identities: [...work.identities, { kind: key.kind, hash: key.hash.toString('hex') }] };
      subject = { ...subject, ...('email' in given ? { email: given.email } : 'userId' in given ? { userId: given.userId } : { anonymousId: given.anonymousId }) };
    } else if (row.state === 'completed') {
      throw new AppError('BAD_REQUEST', 'this erasure is completed and the request no longer knows whom it was about: give --email, --user-id or --anonymous-id to check again');
    }
    const byIndex = await verifyByIndex(services.databases, services.queues, work);
    const emailHashes = work.identities.filter((i) => i.kind === 'email').map((i) => i.hash);
    const deep = options.deep
      ? await deepScan(services.databases, services.redis, ctx.config.queuePrefix, sealingKey, {
          needles: needlesOf(work, subject),
          allowedSuppressionHashes: ctx.config.privacy.erasure.suppress ? emailHashes : [],
          requestId,
        })
      : undefined;
    const clean = byIndex.clean && (deep?.clean ?? true);
    if (options.json) ctx.print(JSON.stringify({ clean, byIndex, deep: deep ?? null }));
    else {
      ctx.print(`${clean ? 'clean' : 'NOT CLEAN'}: ${byIndex.checkedColumns} columns and ${byIndex.checkedJobs} job ids checked by index${deep ? `, deep scan of every table and Redis key for ${deep.needles} identifiers` : ''}`);
      for (const f of [...byIndex.findings, ...(deep?.findings ?? [])]) ctx.print(`  found in ${f.store} ${f.where}: ${f.count}`);
    }
    return clean ? 0 : 2;
  });
}

export function registerErasureCommands(subject: Command, run: <A extends unknown[]>(action: (...args: A) => Promise<number>) => (...args: A) => Promise<void>, context: () => CommandContext): void {
  const identifierOptions = (c: Command) =>
    c.option('--email <email>', "the person's email address").option('--user-id <id>', 'the userId a site sent').option('--anonymous-id <id>', 'an anonymousId (cookie or device id)');
  identifierOptions(
    subject
      .command('erase')
      .description("erase everything about one person, verify it and sign a receipt (GDPR Art. 17); done by the erasure worker"),
  )
    .option('--yes', 'confirm: erasure cannot be undone')
    .option('--deep', 'also scan every table and Redis key before the receipt (slow)')
    .option('--wait [seconds]', 'wait for the erasure worker to finish (default 120 s) and print the receipt')
    .option('--json', 'print JSON')
    .action(run((options: IdentifierOptions & { yes?: boolean; deep?: boolean; wait?: string | boolean; json?: boolean }) => eraseCommand(context(), options)));
  subject
    .command('erase-status')
    .description('progress of an erasure request, and its signed receipt once completed')
    .argument('<id>', 'the request id `subject erase` printed')
    .option('--json', 'print JSON')
    .action(run((id: string, options: { json?: boolean }) => statusCommand(context(), id, options)));
  identifierOptions(
    subject
      .command('verify-erasure')
      .description('check again that nothing of the person is left (by index; --deep: every column and Redis key)')
      .argument('<id>', 'the erasure request id'),
  )
    .option('--deep', 'scan every table and Redis key, for the identifiers in plaintext too')
    .option('--json', 'print JSON')
    .action(run((id: string, options: IdentifierOptions & { deep?: boolean; json?: boolean }) => verifyCommand(context(), id, options)));
}

import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { describeSubject } from '../../engine/identity/subject';
import { subjectIdentifierOf } from '../../engine/identity/lookup';
import { AllowedOrigin, changeAllowedOrigins, createSource, listSources, revokeSource } from '../../engine/ingest/sources';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { ApiKeyName } from '../../schemas/api-keys';
import type { CommandContext } from './commands';
import { DecryptionReason } from '../../schemas/admin';
import { subjectTarget } from '../../engine/audit/targets';
import { auditCommand } from './audit-actor';

/** Origins from the command line, normalized as browsers send them; the first bad one is the error. */
function parseOrigins(option: string, values: readonly string[] | undefined): string[] {
  return (values ?? []).map((value) => {
    const parsed = AllowedOrigin.safeParse(value);
    if (!parsed.success) throw new AppError('VALIDATION_FAILED', `${option}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return parsed.data;
  });
}

function describeOrigins(origins: readonly string[]): string {
  if (origins.length === 0) return 'no browser origin (server calls and pixels only)';
  return origins.includes('*') ? 'any browser origin (*)' : origins.join(', ');
}

const SOURCE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function sourcesAddCommand(ctx: CommandContext, name: string, options: { origin?: string[]; json?: boolean }): Promise<number> {
  const parsed = ApiKeyName.safeParse(name);
  if (!parsed.success) throw new AppError('VALIDATION_FAILED', `NAME: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const origins = parseOrigins('--origin', options.origin);
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    // A write key is a credential and its origins an allow-list: both changes are audited.
    const source = await databases.db.transaction().execute(async (trx) => {
      const created = await createSource(trx, parsed.data, origins);
      await auditCommand(trx, keys, { action: 'sources.create', target: `source:${created.id}`, outcome: 'ok', detail: { allowedOrigins: created.allowedOrigins } });
      return created;
    });
    if (options.json) ctx.print(JSON.stringify(source));
    else {
      ctx.print(`created source "${source.name}" (id ${source.id})`);
      ctx.print(`write key: ${source.writeKey}`);
      ctx.print(`browser calls allowed from: ${describeOrigins(source.allowedOrigins)}`);
      ctx.print('use it as the write key of a Segment SDK, or as wk= in a pixel; it is shown only once');
    }
    return 0;
  });
}

/** Adds and removes the origins whose browsers may use a source's write key (CORS); prints the result. */
export async function sourcesOriginsCommand(ctx: CommandContext, id: string, options: { add?: string[]; remove?: string[]; json?: boolean }): Promise<number> {
  if (!SOURCE_ID.test(id)) throw new AppError('VALIDATION_FAILED', `ID '${id}': expected a source id (a UUID, as \`consentflow sources list\` prints)`);
  const add = parseOrigins('--add', options.add);
  const remove = parseOrigins('--remove', options.remove);
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const origins = await databases.db.transaction().execute(async (trx) => {
      const changed = await changeAllowedOrigins(trx, id, { add, remove });
      if (changed && add.length + remove.length > 0) {
        await auditCommand(trx, keys, { action: 'sources.origins', target: `source:${id}`, outcome: 'ok', detail: { add, remove } });
      }
      return changed;
    });
    if (!origins) throw new AppError('NOT_FOUND', `no active source has the id ${id}`);
    if (options.json) ctx.print(JSON.stringify({ id, allowedOrigins: origins }));
    else {
      ctx.print(`source ${id}: browser calls allowed from ${describeOrigins(origins)}`);
      if (add.length + remove.length > 0) ctx.print('the running API applies the change within 5 s');
    }
    return 0;
  });
}

export async function sourcesListCommand(ctx: CommandContext, options: { json?: boolean }): Promise<number> {
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const sources = await listSources(databases.db);
    if (options.json) ctx.print(JSON.stringify(sources));
    else if (sources.length === 0) ctx.print('no sources yet: create one with `consentflow sources add NAME`');
    else for (const s of sources) ctx.print(`${s.id}  ${s.writeKeyPrefix}…  ${s.name}  (origins: ${describeOrigins(s.allowedOrigins)})`);
    return 0;
  });
}

export async function sourcesRevokeCommand(ctx: CommandContext, id: string): Promise<number> {
  if (!SOURCE_ID.test(id)) {
    throw new AppError('VALIDATION_FAILED', `ID '${id}': expected a source id (a UUID, as \`consentflow sources list\` prints)`);
  }
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const revoked = await databases.db.transaction().execute(async (trx) => {
      const done = await revokeSource(trx, id);
      if (done) await auditCommand(trx, keys, { action: 'sources.revoke', target: `source:${id}`, outcome: 'ok' });
      return done;
    });
    if (!revoked) throw new AppError('NOT_FOUND', `no active source has the id ${id}`);
    ctx.print(`revoked source ${id}: its write key is refused within 5 s; its data stays`);
    return 0;
  });
}

/** A privacy_officer path: prints decrypted PII of one person. Run on the server by an operator. */
export async function subjectShowCommand(
  ctx: CommandContext,
  options: { email?: string; userId?: string; anonymousId?: string; reason?: string; json?: boolean },
): Promise<number> {
  const id = subjectIdentifierOf(options);
  if (!id) throw new AppError('BAD_REQUEST', 'give exactly one of --email, --user-id, --anonymous-id');
  const reason = DecryptionReason.safeParse(options.reason);
  if (!reason.success) throw new AppError('VALIDATION_FAILED', `--reason: ${reason.error.issues[0]?.message ?? 'invalid'}`);
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const report = await describeSubject(databases, keys, id);
    // Audited before anything decrypted is printed (DESIGN.md invariant 5); a miss is recorded too.
    await auditCommand(databases.db, keys, {
      action: 'subject.lookup',
      target: report ? subjectTarget(keys, report.profileId) : null,
      outcome: report ? 'ok' : 'not_found',
      reason: reason.data,
      detail: report ? { decrypted: true } : {},
    }, ctx.log);
    if (!report) {
      if (options.json) ctx.print('null');
      else ctx.print('no profile is known for that identifier');
      return options.json ? 0 : 3;
    }
    if (options.json) {
      ctx.print(JSON.stringify(report));
      return 0;
    }
    ctx.print(`profile ${report.profileId} (created ${report.createdAt ?? '?'}, last event ${report.lastSeenAt ?? '?'})`);
    ctx.print('identifiers (stored as keyed hashes only):');
    for (const i of report.identifiers) ctx.print(`  ${i.kind.padEnd(10)} from source ${i.sourceId} since ${i.createdAt}`);
    ctx.print('personal data (encrypted in the vault):');
    for (const f of report.fields) ctx.print(`  ${f.field.padEnd(12)} ${f.value}   (source ${f.sourceId}, ${f.acquiredAt})`);
    ctx.print('traits:');
    for (const [name, t] of Object.entries(report.traits)) ctx.print(`  ${name.padEnd(12)} ${JSON.stringify(t.v)}   (source ${t.src}, ${t.at})`);
    ctx.print('events:');
    for (const e of report.events) ctx.print(`  ${e.type.padEnd(10)} ${e.count}`);
    ctx.print('consent (latest decision per purpose):');
    for (const c of report.consent) ctx.print(`  ${c.purpose.padEnd(16)} ${c.decision.padEnd(10)} by ${c.method} on ${c.at}`);
    return 0;
  });
}

import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { describeSubject } from '../../engine/identity/subject';
import { subjectIdentifierOf } from '../../engine/identity/lookup';
import { createSource, listSources, revokeSource } from '../../engine/ingest/sources';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { ApiKeyName } from '../../schemas/api-keys';
import type { CommandContext } from './commands';

export async function sourcesAddCommand(ctx: CommandContext, name: string, options: { json?: boolean }): Promise<number> {
  const parsed = ApiKeyName.safeParse(name);
  if (!parsed.success) throw new AppError('VALIDATION_FAILED', `NAME: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const source = await createSource(databases.db, parsed.data);
    if (options.json) ctx.print(JSON.stringify(source));
    else {
      ctx.print(`created source "${source.name}" (id ${source.id})`);
      ctx.print(`write key: ${source.writeKey}`);
      ctx.print('use it as the write key of a Segment SDK, or as wk= in a pixel; it is shown only once');
    }
    return 0;
  });
}

export async function sourcesListCommand(ctx: CommandContext, options: { json?: boolean }): Promise<number> {
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const sources = await listSources(databases.db);
    if (options.json) ctx.print(JSON.stringify(sources));
    else if (sources.length === 0) ctx.print('no sources yet: create one with `consentflow sources add NAME`');
    else for (const s of sources) ctx.print(`${s.id}  ${s.writeKeyPrefix}…  ${s.name}`);
    return 0;
  });
}

export async function sourcesRevokeCommand(ctx: CommandContext, id: string): Promise<number> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw new AppError('VALIDATION_FAILED', `ID '${id}': expected a source id (a UUID, as \`consentflow sources list\` prints)`);
  }
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    if (!(await revokeSource(databases.db, id))) throw new AppError('NOT_FOUND', `no active source has the id ${id}`);
    ctx.print(`revoked source ${id}: its write key is refused within 5 s; its data stays`);
    return 0;
  });
}

/** A privacy_officer path: prints decrypted PII of one person. Run on the server by an operator. */
export async function subjectShowCommand(
  ctx: CommandContext,
  options: { email?: string; userId?: string; anonymousId?: string; json?: boolean },
): Promise<number> {
  const id = subjectIdentifierOf(options);
  if (!id) throw new AppError('BAD_REQUEST', 'give exactly one of --email, --user-id, --anonymous-id');
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const report = await describeSubject(databases, keys, id);
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

import type { Command } from 'commander';
import { keyTarget } from '../../engine/audit/targets';
import { createApiKey, listApiKeys, revokeApiKey } from '../../engine/auth/api-keys';
import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { ApiKeyExpiry, ApiKeyIdParams, ApiKeyName, type ApiKeySummary } from '../../schemas/api-keys';
import { Role } from '../../schemas/roles';
import { auditCommand } from './audit-actor';
import type { CommandContext } from './commands';

type Run = <A extends unknown[]>(action: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;

interface CreateOptions {
  role: string;
  name?: string;
  expiresAt?: string;
  expiresIn?: string;
  json?: boolean;
}

const DAY_MS = 86_400_000;

/** `--expires-in 90d` / `--expires-at 2027-03-01T00:00:00Z`, or neither (a key that does not expire). */
export function keyExpiry(options: { expiresAt?: string; expiresIn?: string }, now = Date.now()): Date | undefined {
  if (options.expiresAt !== undefined && options.expiresIn !== undefined) {
    throw new AppError('BAD_REQUEST', 'give --expires-at or --expires-in, not both');
  }
  if (options.expiresIn !== undefined) {
    const match = /^([1-9][0-9]{0,3})d$/.exec(options.expiresIn);
    if (!match) throw new AppError('VALIDATION_FAILED', `--expires-in '${options.expiresIn}': expected a number of days from 1 to 3650, e.g. 90d`);
    const days = Number(match[1]);
    if (days > 3650) throw new AppError('VALIDATION_FAILED', `--expires-in '${options.expiresIn}': expected at most 3650d (ten years)`);
    return new Date(now + days * DAY_MS);
  }
  if (options.expiresAt !== undefined) {
    const parsed = ApiKeyExpiry.safeParse(options.expiresAt);
    if (!parsed.success) throw new AppError('VALIDATION_FAILED', `--expires-at '${options.expiresAt}': ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return parsed.data;
  }
  return undefined;
}

function state(key: ApiKeySummary, now = Date.now()): string {
  if (key.revokedAt) return 'revoked';
  if (key.expiresAt && Date.parse(key.expiresAt) <= now) return 'expired';
  return 'active';
}

export async function keysCreateCommand(ctx: CommandContext, options: CreateOptions): Promise<number> {
  const role = Role.safeParse(options.role);
  if (!role.success) throw new AppError('VALIDATION_FAILED', `--role '${options.role}': ${role.error.issues[0]?.message ?? 'invalid'}`);
  const name = options.name === undefined ? undefined : ApiKeyName.safeParse(options.name);
  if (name && !name.success) throw new AppError('VALIDATION_FAILED', `--name: ${name.error.issues[0]?.message ?? 'invalid'}`);
  const expiresAt = keyExpiry(options);
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const created = await databases.db.transaction().execute(async (trx) => {
      const key = await createApiKey(trx, { role: role.data, name: name?.data, expiresAt });
      await auditCommand(trx, keys, { action: 'keys.create', target: keyTarget(key.id), outcome: 'ok', detail: { role: key.role, expiresAt: key.expiresAt } });
      return key;
    });
    if (options.json) ctx.print(JSON.stringify(created));
    else {
      ctx.print(`created ${created.role} key "${created.name}" (id ${created.id})${created.expiresAt ? `, expires ${created.expiresAt}` : ''}`);
      ctx.print(`key: ${created.key}`);
      ctx.print('store it now: it is shown only once and cannot be recovered');
    }
    return 0;
  });
}

export async function keysListCommand(ctx: CommandContext, options: { json?: boolean }): Promise<number> {
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const keys = await listApiKeys(databases.db);
    if (options.json) ctx.print(JSON.stringify(keys));
    else {
      for (const k of keys) {
        const expiry = k.expiresAt ? `expires ${k.expiresAt.slice(0, 10)}` : 'no expiry';
        const used = k.lastUsedAt ? `last used ${k.lastUsedAt.slice(0, 16).replace('T', ' ')}` : 'never used';
        ctx.print(`${k.id}  ${k.role.padEnd(15)}  ${k.prefix}…  ${state(k).padEnd(7)}  ${expiry.padEnd(18)}  ${used.padEnd(27)}  ${k.name}`);
      }
      if (keys.length === 0) ctx.print('no API keys yet: create one with `consentflow keys create --role ROLE`');
    }
    return 0;
  });
}

export async function keysRevokeCommand(ctx: CommandContext, id: string): Promise<number> {
  const parsed = ApiKeyIdParams.safeParse({ id });
  if (!parsed.success) throw new AppError('VALIDATION_FAILED', `ID '${id}': ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const revoked = await databases.db.transaction().execute(async (trx) => {
      const result = await revokeApiKey(trx, id);
      await auditCommand(trx, keys, { action: 'keys.revoke', target: keyTarget(id), outcome: result ? 'ok' : 'not_found', detail: { alreadyRevoked: result?.alreadyRevoked ?? false } });
      return result;
    });
    if (!revoked) throw new AppError('NOT_FOUND', `no API key has the id ${id} (see \`consentflow keys list\`)`);
    ctx.print(revoked.alreadyRevoked ? `key ${id} was already revoked (${revoked.key.revokedAt})` : `revoked key ${id} ("${revoked.key.name}"): it is refused from now on`);
    return 0;
  });
}

export function registerKeysCommands(program: Command, run: Run, context: () => CommandContext): void {
  const keys = program.command('keys').description('manage admin API keys');
  keys
    .command('create')
    .description('create an admin API key and print it once')
    .requiredOption('--role <role>', 'marketer, operator, privacy_officer or admin')
    .option('--name <name>', 'a label to tell keys apart')
    .option('--expires-in <days>', 'the key stops working after this many days, e.g. 90d')
    .option('--expires-at <time>', 'the key stops working at this ISO 8601 time')
    .option('--json', 'print a JSON object with the key')
    .action(run((options: CreateOptions) => keysCreateCommand(context(), options)));
  keys
    .command('list')
    .description('list admin API keys with their state, expiry and last use (never the keys themselves)')
    .option('--json', 'print JSON')
    .action(run((options: { json?: boolean }) => keysListCommand(context(), options)));
  keys
    .command('revoke')
    .description('revoke an admin API key at once')
    .argument('<id>', 'the key id, as `consentflow keys list` prints it')
    .action(run((id: string) => keysRevokeCommand(context(), id)));
}

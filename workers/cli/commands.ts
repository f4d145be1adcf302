import type { Config, Keys } from '../../engine/config';
import { loadKeys } from '../../engine/config';
import type { Logger } from '../../engine/log/logger';
import { QUEUE_NAMES, type QueueName, isQueueName } from '../../engine/queues/catalog';
import { openServices } from '../../engine/runtime/services';
import { openMigratedDatabases, withMigratedDatabases } from '../../engine/runtime/database-only';
import { AppError } from '../../engine/errors';
import { HANDLERS } from '../handlers';
import { type ProcessRoles, runProcess } from '../process';
import { reloadOnHangup, stopOnSignals } from './lifecycle';
import { reloadRules } from '../../engine/runtime/reload-rules';

export interface CommandContext {
  readonly config: Config;
  readonly log: Logger;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly print: (line: string) => void;
}

/** Queues that have a worker in this version. */
export function queuesWithWorkers(): QueueName[] {
  return QUEUE_NAMES.filter((queue) => HANDLERS[queue] !== undefined);
}

export function parseQueueList(list: string | undefined): QueueName[] {
  if (list === undefined) return queuesWithWorkers();
  const names = list.split(',').map((name) => name.trim()).filter(Boolean);
  const available = queuesWithWorkers();
  for (const name of names) {
    if (!isQueueName(name) || !available.includes(name)) {
      throw new AppError(
        'BAD_REQUEST',
        `--queues: '${name}' is not a queue with a worker; allowed: ${available.length ? available.join(', ') : '(none in this version)'}`,
      );
    }
  }
  if (names.length === 0) throw new AppError('BAD_REQUEST', '--queues: expected a comma-separated list of queue names');
  return names as QueueName[];
}

function requireExternalDatabase(config: Config, command: string): void {
  if (config.database.url === undefined) {
    throw new AppError(
      'EMBEDDED_DB_IN_USE',
      `\`consentflow ${command}\` runs as a separate process and needs a shared PostgreSQL: set DATABASE_URL, or use \`consentflow start\` to run everything in one process on the embedded database`,
    );
  }
}

/** Runs until a signal, then returns the exit code. */
async function serve(ctx: CommandContext, keys: Keys, roles: ProcessRoles): Promise<number> {
  const services = await openServices({ config: ctx.config, keys, log: ctx.log, searchPath: ctx.env.PATH ?? '' });
  const running = await runProcess(services, roles);
  reloadOnHangup(() => reloadRules(services), ctx.log);
  if (roles.api && running.url) ctx.log.info(`consentflow is ready: ${running.url}/readyz`);
  return stopOnSignals(running, ctx.log);
}

export async function startCommand(ctx: CommandContext): Promise<number> {
  const keys = loadKeys(ctx.config, ctx.log);
  return serve(ctx, keys, { api: true, queues: queuesWithWorkers() });
}

export async function apiCommand(ctx: CommandContext): Promise<number> {
  requireExternalDatabase(ctx.config, 'api');
  return serve(ctx, loadKeys(ctx.config, ctx.log), { api: true, queues: [] });
}

export async function workerCommand(ctx: CommandContext, queuesOption: string | undefined): Promise<number> {
  requireExternalDatabase(ctx.config, 'worker');
  const queues = parseQueueList(queuesOption);
  if (queues.length === 0) throw new AppError('BAD_REQUEST', 'no queue has a worker in this version; nothing to run');
  return serve(ctx, loadKeys(ctx.config, ctx.log), { api: false, queues });
}

export async function migrateCommand(ctx: CommandContext): Promise<number> {
  const { databases, applied } = await openMigratedDatabases(ctx.config, ctx.log);
  await databases.close();
  ctx.print(applied.length ? `applied ${applied.length} migration(s): ${applied.join(', ')}` : 'database is up to date');
  return 0;
}

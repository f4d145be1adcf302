import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { createLogger, flushLogger, type Logger } from '../../engine/log/logger';
import { MigrationError } from '../../engine/db/migrate';
import { RedisServerMissingError } from '../../engine/redis/embedded';
import {
  type CommandContext,
  apiCommand,
  migrateCommand,
  startCommand,
  workerCommand,
} from './commands';
import { sourcesAddCommand, sourcesListCommand, sourcesOriginsCommand, sourcesRevokeCommand, subjectShowCommand } from './ingestion-commands';
import { registerRulesCommands } from './rules-commands';
import { registerKeysCommands } from './keys-commands';
import { registerAuditCommands } from './audit-commands';
import { registerRetentionCommands } from './retention-commands';
import { registerSubjectExportCommand } from './subject-export-command';
import { registerErasureCommands } from './erasure-commands';
import { registerReportCommands } from './report-commands';
import { registerKitCommands } from './kit-commands';
import { unsubscribeMailCommand } from './unsubscribe-mail-command';
import { registerImportCommand } from './import-commands';
import { registerDemoCommand } from './demo-command';

import { packageVersion } from './package-version';

/** Errors that are the user's to fix: one line, no stack trace. */
function isExpected(err: unknown): err is Error {
  return err instanceof ConfigError || err instanceof AppError || err instanceof MigrationError || err instanceof RedisServerMissingError;
}

function fail(err: unknown, log: Logger | undefined): number {
  if (isExpected(err)) {
    process.stderr.write(`consentflow: ${err.message}\n`);
    return err instanceof ConfigError ? 78 : 1; // 78: EX_CONFIG (sysexits.h)
  }
  if (log) log.fatal({ err }, 'unexpected error');
  else process.stderr.write(`consentflow: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return 1;
}

export async function main(argv: string[], env: Readonly<Record<string, string | undefined>>): Promise<number> {
  let log: Logger | undefined;
  // Servers log to stdout; one-shot commands to stderr, keeping stdout for what they print.
  const context = (kind: 'server' | 'command' = 'command'): CommandContext => {
    const config = loadConfig(env);
    log = createLogger({ level: config.logLevel, fd: kind === 'server' ? 1 : 2 });
    return { config, log, env, print: (line) => process.stdout.write(`${line}\n`) };
  };
  let exitCode = 0;
  // Every command's action returns its exit code; commander passes its arguments and options through.
  const run =
    <A extends unknown[]>(action: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      exitCode = await action(...args);
    };

  const program = new Command('consentflow')
    .description('Event-driven marketing automation where consent and privacy law are part of the engine.')
    .version(packageVersion(), '-v, --version')
    .exitOverride()
    .showHelpAfterError('(run `consentflow --help` for usage)');

  program
    .command('start')
    .description('run everything in one process: the API and every queue worker (the embedded default)')
    .action(run(() => startCommand(context('server'))));
  program
    .command('api')
    .description('run the HTTP API only (needs DATABASE_URL)')
    .action(run(() => apiCommand(context('server'))));
  program
    .command('worker')
    .description('run queue workers only (needs DATABASE_URL)')
    .option('--queues <names>', 'comma-separated queue names (default: every queue with a worker)')
    .action(run((options: { queues?: string }) => workerCommand(context('server'), options.queues)));
  program
    .command('migrate')
    .description('apply pending database migrations and exit')
    .action(run(() => migrateCommand(context())));

  registerKeysCommands(program, run, () => context());
  registerAuditCommands(program, run, () => context());

  // A repeatable option: each occurrence adds to the list.
  const collect = (value: string, previous: string[]) => [...previous, value];
  const sources = program.command('sources').description('manage tracking sources (websites, apps, servers) and their write keys');
  sources
    .command('add')
    .description('create a source and print its write key once')
    .argument('<name>', 'a name for the source, e.g. "www.example.com"')
    .option('--origin <origin>', 'an origin whose browsers may call the API with this key, scheme://host[:port] or * (repeatable; none: server calls and pixels only)', collect, [])
    .option('--json', 'print a JSON object with the write key')
    .action(run((name: string, options: { origin?: string[]; json?: boolean }) => sourcesAddCommand(context(), name, options)));
  sources
    .command('list')
    .description('list sources (never their write keys)')
    .option('--json', 'print JSON')
    .action(run((options: { json?: boolean }) => sourcesListCommand(context(), options)));

  sources
    .command('revoke')
    .description('stop accepting a source\'s write key (a leaked key, a retired site); its data stays')
    .argument('<id>', 'the source id, as `consentflow sources list` prints it')
    .action(run((id: string) => sourcesRevokeCommand(context(), id)));
  sources
    .command('origins')
    .description('show or change the origins whose browsers may call the API with a source\'s write key (CORS)')
    .argument('<id>', 'the source id, as `consentflow sources list` prints it')
    .option('--add <origin>', 'allow an origin, scheme://host[:port] or * (repeatable)', collect, [])
    .option('--remove <origin>', 'stop allowing an origin (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action(run((id: string, options: { add?: string[]; remove?: string[]; json?: boolean }) => sourcesOriginsCommand(context(), id, options)));

  const subject = program.command('subject').description("a person's data (privacy officer)");
  subject
    .command('show')
    .description('show what is stored about one person, decrypted (GDPR Art. 15)')
    .option('--email <email>', 'the person\'s email address')
    .option('--user-id <id>', 'the userId a site sent')
    .option('--anonymous-id <id>', 'an anonymousId (cookie or device id)')
    .requiredOption('--reason <text>', 'why: the ticket or letter of the request (kept in the audit log; no personal data)')
    .option('--json', 'print JSON')
    .action(run((options: { email?: string; userId?: string; anonymousId?: string; reason?: string; json?: boolean }) => subjectShowCommand(context(), options)));
  registerSubjectExportCommand(subject, { context: () => context(), run });
  registerErasureCommands(subject, run, () => context());

  registerImportCommand(program, { context: () => context(), run });

  program
    .command('unsubscribe-mail')
    .description('read one email sent to UNSUBSCRIBE_MAILTO on stdin (a mail server pipe) and apply its unsubscribe; exit 65 if it holds no valid token')
    .action(run(() => unsubscribeMailCommand(context(), process.stdin, (line) => process.stderr.write(`${line}\n`))));

  // The rules group needs no database, Redis or keys: marketers run it on their machine and in CI.
  registerRulesCommands(program, { context: () => context(), run });
  registerRetentionCommands(program, run, () => context());
  registerReportCommands(program, { context: () => context(), run });
  registerKitCommands(program, { context: () => context(), run });
  registerDemoCommand(program, { env, run });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    return fail(err, log);
  } finally {
    if (log) flushLogger(log);
  }
}

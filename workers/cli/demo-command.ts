import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig, loadKeys } from '../../engine/config';
import { createLogger, flushLogger } from '../../engine/log/logger';
import { openServices, type Services } from '../../engine/runtime/services';
import { createSource } from '../../engine/ingest/sources';
import { runProcess } from '../process';
import { queuesWithWorkers } from './commands';
import { DemoStepError } from '../demo/observe';
import { forwardOutbox, forwardTarget } from '../demo/forward';
import { story } from '../demo/story';

/** The shipped rule files: the story is written for them, wherever the command is run from. */
function shippedRulesDir(): string {
  const candidates = [path.resolve(__dirname, '../../rules'), path.resolve(__dirname, '../../../rules')];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'purposes.yaml'))) ?? path.resolve('rules');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function onPath(binary: string, searchPath: string): boolean {
  return searchPath.split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, binary)));
}

/**
 * The demo's own environment: the embedded default in a data dir of its own (a fresh temporary one
 * unless --data-dir), development keys made there, emails into its outbox, its own port. Nothing of
 * the caller's DATABASE_URL, SMTP_URL or keys is used, so the demo never touches a user's data.
 */
function demoEnv(env: Readonly<Record<string, string | undefined>>, dataDir: string, port: number): Record<string, string | undefined> {
  const searchPath = env.PATH ?? '';
  const embedRedis = onPath('redis-server', searchPath);
  return {
    PATH: searchPath,
    NODE_ENV: 'development',
    DATA_DIR: dataDir,
    RULES_DIR: shippedRulesDir(),
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    LOG_LEVEL: env.LOG_LEVEL ?? 'error',
    SHUTDOWN_TIMEOUT_MS: '10000',
    // A private redis-server under the data dir when there is one; else the default Redis, under a queue prefix of the demo's own.
    ...(embedRedis ? { EMBEDDED_REDIS: 'always' } : { EMBEDDED_REDIS: 'auto', REDIS_URL: env.REDIS_URL, QUEUE_PREFIX: `{cfdemo-${process.pid}}` }),
  };
}

export async function demoCommand(
  env: Readonly<Record<string, string | undefined>>,
  options: { dataDir?: string; forwardTo?: string },
  print: (line: string) => void,
): Promise<number> {
  if (options.forwardTo !== undefined) {
    try {
      forwardTarget(options.forwardTo);
    } catch (err) {
      process.stderr.write(`consentflow demo: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s`;
  const fresh = options.dataDir === undefined || !fs.existsSync(options.dataDir) || fs.readdirSync(options.dataDir).length === 0;
  const dataDir = path.resolve(options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'consentflow-demo-')));
  fs.mkdirSync(dataDir, { recursive: true });
  const port = await freePort();
  const config = loadConfig(demoEnv(env, dataDir, port));
  // Engine logs to stderr (errors only, unless LOG_LEVEL says otherwise); the story to stdout.
  const log = createLogger({ level: config.logLevel, fd: 2 });
  const outboxDir = path.join(dataDir, 'outbox');
  print(`consentflow demo: the engine on its embedded default in ${dataDir}`);
  print(`  rules: ${config.rulesDir}; emails: written to ${outboxDir} (no SMTP_URL); development keys: ${path.join(dataDir, 'keys')}`);

  let services: Services | undefined;
  let running: Awaited<ReturnType<typeof runProcess>> | undefined;
  let stopping: Promise<boolean> | undefined;
  const stopEngine = (): Promise<boolean> => {
    if (!services) return Promise.resolve(true);
    stopping ??= running ? running.stop() : services.releasers.releaseAll(log, config.shutdownTimeoutMs);
    return stopping;
  };
  // Ctrl-C mid-story stops the engine (and its redis-server) rather than leaving them; a second one exits at once.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) process.exit(130);
    interrupted = signal;
    process.stderr.write(`consentflow demo: ${signal}: stopping the engine\n`);
    void stopEngine();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let exitCode = 0;
  try {
    print(`[${elapsed()}] starting: embedded PostgreSQL (PGlite), Redis, migrations, the API and every worker…`);
    // Its development keys are the demo's own (printed above), not a warning to act on.
    const keys = loadKeys(config, log.child({}, { level: 'silent' }));
    services = await openServices({ config, keys, log, searchPath: env.PATH ?? '' });
    const source = await createSource(services.databases.db, 'demo website');
    if (!interrupted) running = await runProcess(services, { api: true, queues: queuesWithWorkers() });
    if (!running || interrupted) throw new DemoStepError('interrupted');
    const url = running.url ?? config.http.publicUrl;
    print(`[${elapsed()}] ready: API at ${url}`);
    // A data dir used before may hold an erased ann@example.com on its suppression list.
    const email = fresh ? 'ann@example.com' : `ann.${Date.now().toString(36)}@example.com`;
    const { steps, receipt } = story({ services, url, writeKey: source.writeKey, outboxDir, email, say: print });
    for (const [index, step] of steps.entries()) {
      print('');
      print(`[${elapsed()}] step ${index + 1}/${steps.length}: ${step.title}`);
      try {
        await step.run();
      } catch (err) {
        throw new DemoStepError(`step ${index + 1} (${step.title}) failed: ${(err as Error).message}`, { cause: err });
      }
    }
    print('');
    print(`[${elapsed()}] the erasure receipt (it names nobody):`);
    print(JSON.stringify(receipt() ?? {}, null, 2));
    print('');
    print(`the emails of the story are in ${outboxDir}: open the .eml files with any mail program`);
    if (options.forwardTo !== undefined) {
      const target = new URL(options.forwardTo);
      const where = `${target.protocol}//${target.host}`;
      try {
        const forwarded = await forwardOutbox(outboxDir, options.forwardTo);
        print(`and ${forwarded === 1 ? 'it was' : `all ${forwarded} were`} delivered to ${where} as well (Mailpit: open its web UI, http://127.0.0.1:8025)`);
      } catch (err) {
        throw new DemoStepError(`the emails could not be delivered to ${where}: ${(err as Error).message}`, { cause: err });
      }
    }
  } catch (err) {
    exitCode = interrupted ? 130 : 1;
    if (!interrupted) process.stderr.write(`consentflow demo: ${err instanceof DemoStepError ? err.message : ((err as Error).stack ?? String(err))}\n`);
  } finally {
    if (services) {
      print(`[${elapsed()}] stopping the engine…`);
      if (!(await stopEngine())) {
        process.stderr.write('consentflow demo: the engine did not stop cleanly\n');
        exitCode ||= 1;
      }
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    flushLogger(log);
  }
  const ending = exitCode === 0 ? 'done: every step happened as told' : interrupted ? `interrupted (data left in ${dataDir})` : `the demo stopped at a failed step (data left in ${dataDir})`;
  print(`[${elapsed()}] ${ending}`);
  return exitCode;
}

export function registerDemoCommand(
  program: Command,
  deps: { env: Readonly<Record<string, string | undefined>>; run: <A extends unknown[]>(action: (...args: A) => Promise<number>) => (...args: A) => Promise<void> },
): void {
  program
    .command('demo')
    .description('a guided tour: start the engine on its embedded default and play a visitor\'s story through the HTTP API, from first visit to erasure')
    .option('--data-dir <dir>', 'where the demo keeps its data and emails (default: a fresh temporary directory)')
    .option('--forward-to <smtp-url>', "also deliver the story's emails to this SMTP server at the end, e.g. Mailpit's smtp://127.0.0.1:1025")
    .action(deps.run((options: { dataDir?: string; forwardTo?: string }) => demoCommand(deps.env, options, (line) => process.stdout.write(`${line}\n`))));
}

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FIGURES_DIR } from './figures';
import { BIN } from '../../support/cli';
import { waitFor } from '../../support/wait';

/**
 * Engine processes as an operator runs them (`node bin/consentflow.js api`, `worker --queues …`),
 * started by a fault scenario so it can kill them. Their JSON log lines are read for readiness and
 * kept (the last few hundred) for a failure's message.
 */
export interface EngineProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Where the API listens, once `ready()` resolved (API processes only). */
  url: string | undefined;
  /** Resolves once the process logged that it serves (API) or takes jobs (worker). */
  ready(timeoutMs?: number): Promise<void>;
  /** The last log lines, for messages. */
  tail(lines?: number): string;
  /** Log lines seen so far whose text matches. */
  count(pattern: RegExp): number;
  /** Lines seen so far (all of them), parsed where they are JSON. */
  readonly lines: string[];
  alive(): boolean;
  kill9(): Promise<void>;
  signal(signal: NodeJS.Signals): void;
}

const started = new Set<EngineProcess>();
const crashes: string[] = [];

// A scenario that times out, or a jest worker that is stopped, must not leave engine processes
// polling the queues behind it: they go with the process that started them.
process.once('exit', () => {
  for (const p of started) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Processes that exited without being told to (no SIGKILL or signal from the scenario): a crash.
 * Every scenario expects none.
 */
export function unexpectedExits(): string[] {
  return [...crashes];
}

/** Every engine process a scenario started, still running: what `killAll` ends at teardown. */
export function runningProcesses(): EngineProcess[] {
  return [...started].filter((p) => p.alive());
}

export function spawnEngine(name: string, args: string[], env: Record<string, string | undefined>): EngineProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  // Every process's whole log is also kept on disk, killed ones' included, for a failure's post-mortem.
  const logDir = path.join(FIGURES_DIR, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const logFile = fs.createWriteStream(path.join(logDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${name}-${child.pid}.log`));
  logFile.on('error', () => undefined);
  let partial = '';
  let readyLine = false;
  let exitedAlready = false;
  let told = false;
  const handle: EngineProcess = {
    name,
    child,
    pid: child.pid as number,
    url: undefined,
    lines,
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        exitedAlready = true;
        resolve({ code, signal });
      }),
    ),
    async ready(timeoutMs = 90_000) {
      await waitFor(
        () => {
          if (exitedAlready) throw new Error(`${name} exited before it was ready:\n${handle.tail(30)}`);
          return readyLine;
        },
        { timeoutMs, what: `${name} to be ready` },
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${handle.tail(30)}`);
      });
    },
    tail(n = 40) {
      return lines.slice(-n).join('\n');
    },
    count(pattern) {
      return lines.filter((l) => pattern.test(l)).length;
    },
    alive: () => !exitedAlready && child.exitCode === null && child.signalCode === null,
    async kill9() {
      if (!handle.alive()) return;
      told = true;
      child.kill('SIGKILL');
      await handle.exited;
    },
    signal(sig) {
      told = true;
      if (handle.alive()) child.kill(sig);
    },
  };
  const onData = (chunk: Buffer) => {
    logFile.write(chunk);
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (!line) continue;
      lines.push(line);
      if (line.includes('"msg":"API listening"')) {
        const url = /"url":"([^"]+)"/.exec(line)?.[1];
        if (url) handle.url = url;
        readyLine = true;
      } else if (line.includes('"msg":"workers started"')) readyLine = true;
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  started.add(handle);
  void handle.exited.then(({ code, signal }) => {
    started.delete(handle);
    logFile.end();
    if (!told) crashes.push(`${name} (pid ${handle.pid}) exited by itself (code ${code}, signal ${signal}):\n${handle.tail(20)}`);
  });
  return handle;
}

/** Kills (SIGKILL) every engine process a scenario started that still runs: teardown only. */
export async function killAll(): Promise<void> {
  await Promise.all(runningProcesses().map((p) => p.kill9()));
}

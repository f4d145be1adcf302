import { flushLogger, type Logger } from '../../engine/log/logger';
import type { RunningProcess } from '../process';

/**
 * The only place that installs signal handlers. The first SIGTERM/SIGINT stops intake, drains and
 * closes within SHUTDOWN_TIMEOUT_MS (exit 0 if everything closed cleanly, 1 if not); a second one
 * forces exit at once (130).
 */
export function stopOnSignals(running: RunningProcess, log: Logger): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now without waiting');
        flushLogger(log);
        process.exit(130);
      }
      stopping = true;
      log.info({ signal }, 'stopping: no new requests or jobs; draining');
      void running.stop().then((clean) => {
        log.info({ clean }, clean ? 'stopped' : 'stopped, but not everything closed cleanly');
        flushLogger(log);
        resolve(clean ? 0 : 1);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** SIGHUP re-reads the rule files (the running set stays if the new one has problems). */
export function reloadOnHangup(reload: () => Promise<unknown>, log: Logger): void {
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 're-reading the rules');
    void reload().catch((err: unknown) => log.error({ err }, 'rules reload failed'));
  });
}

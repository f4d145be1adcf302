import { createLogger, type Logger } from '../../engine/log/logger';

/** A real pino logger (with the engine's redaction and scrubbing) whose lines are kept in memory. */
export function capturingLogger(level = 'trace'): { log: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const log = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  return { log, lines, text: () => lines.join('') };
}

import pino, { type DestinationStream, type Logger } from 'pino';
import { scrubLine } from './scrub';

export type { Logger } from 'pino';

/**
 * Known places PII can sit in a log object. Ids in logs are pseudonyms; anything that could identify
 * a person is removed here (invariant 1), and scrubLine masks whatever these paths miss.
 */
export const REDACT_PATHS = [
  'email',
  '*.email',
  'traits.email',
  '*.traits.email',
  'name',
  'phone',
  '*.phone',
  'firstName',
  'lastName',
  '*.firstName',
  '*.lastName',
  'address',
  'ip',
  '*.ip',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-forwarded-for"]',
  'headers.authorization',
  'password',
  '*.password',
  'writeKey',
  '*.writeKey',
];

type FlushableStream = DestinationStream & { flushSync?: () => void };

function scrubbingDestination(target: FlushableStream): FlushableStream {
  const stream: FlushableStream = { write: (line: string) => target.write(scrubLine(line)) };
  if (target.flushSync) stream.flushSync = () => target.flushSync?.();
  return stream;
}

export interface LoggerOptions {
  readonly level: string;
  /** Where lines go; `fd` (default 1, stdout) when absent. Tests pass a collecting stream. */
  readonly destination?: DestinationStream;
  /** 2 for one-shot commands, so their stdout carries only their output (e.g. `--json`). */
  readonly fd?: 1 | 2;
}

export function createLogger(options: LoggerOptions): Logger {
  const target = options.destination ?? pino.destination({ dest: options.fd ?? 1, sync: false });
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: pino.stdSerializers.err },
    },
    scrubbingDestination(target),
  );
}

/** Flushes an asynchronous destination; a no-op for others. Called last during shutdown. */
export function flushLogger(log: Logger): void {
  const stream = (log as unknown as Record<symbol, FlushableStream | undefined>)[pino.symbols.streamSym];
  try {
    stream?.flushSync?.();
  } catch {
    // A destination not yet open (or already closed) has nothing left to flush.
  }
}

import { ERROR_CODES, type ErrorCode } from './codes';

/** An error the engine expects and reports to its caller with a code from the registry. */
export class AppError extends Error {
  override readonly name = 'AppError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.status = ERROR_CODES[code].status;
  }
}

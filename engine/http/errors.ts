import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ZodError } from 'zod';
import { AppError, ERROR_CODES, type ErrorCode, isUnavailableError } from '../errors';
import type { Metrics } from '../metrics/registry';

/** The one error shape of every JSON response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export function sendError(reply: FastifyReply, code: ErrorCode, message: string, metrics?: Metrics): FastifyReply {
  metrics?.httpErrors.inc({ code });
  const body: ErrorBody = { error: { code, message } };
  return reply.code(ERROR_CODES[code].status).type('application/json; charset=utf-8').send(body);
}

/** `traits.email: expected string` — the path of the first bad field and what is allowed. */
export function describeZodError(error: ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`)
    .join('; ');
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
};

export function installErrorHandling(app: FastifyInstance, metrics: Metrics, bodyLimit: number): void {
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`, metrics),
  );

  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (err instanceof AppError) return sendError(reply, err.code, err.message, metrics);
    if (err instanceof ZodError) return sendError(reply, 'VALIDATION_FAILED', describeZodError(err), metrics);
    const fastifyCode = 'code' in err && typeof err.code === 'string' ? FASTIFY_CODES[err.code] : undefined;
    if (fastifyCode === 'PAYLOAD_TOO_LARGE') {
      // Routes may set their own limit (the tracking API allows 500 KB a batch).
      const limit = request.routeOptions.bodyLimit ?? bodyLimit;
      return sendError(reply, fastifyCode, `the body exceeds the limit of ${limit} bytes for this route`, metrics);
    }
    if (fastifyCode === 'INVALID_JSON') {
      // SyntaxError text can quote the body; say only where it failed.
      return sendError(reply, fastifyCode, 'the body is not valid JSON', metrics);
    }
    if (fastifyCode === 'UNSUPPORTED_MEDIA_TYPE') {
      return sendError(reply, fastifyCode, `content type '${request.headers['content-type'] ?? ''}' is not accepted; send application/json`, metrics);
    }
    if (fastifyCode) return sendError(reply, fastifyCode, err.message, metrics);
    if (isUnavailableError(err)) {
      request.log.warn({ err: { name: err.name, code: (err as FastifyError).code } }, 'dependency unavailable');
      return sendError(reply, 'UNAVAILABLE', ERROR_CODES.UNAVAILABLE.summary, metrics);
    }
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return sendError(reply, 'BAD_REQUEST', err.message, metrics);
    }
    request.log.error({ err }, 'unhandled error');
    return sendError(reply, 'INTERNAL', ERROR_CODES.INTERNAL.summary, metrics);
  });
}

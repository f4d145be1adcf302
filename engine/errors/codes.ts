/**
 * The one registry of error codes the engine answers with. HTTP responses carry
 * `{error: {code, message}}`; CLI errors print `code: message`. Add a code here before using it.
 */
export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, summary: 'the request is malformed' },
  INVALID_JSON: { status: 400, summary: 'the body is not valid JSON' },
  VALIDATION_FAILED: { status: 400, summary: 'a field is missing or has a value that is not allowed' },
  UNAUTHORIZED: { status: 401, summary: 'no valid credentials' },
  FORBIDDEN: { status: 403, summary: 'the credentials do not allow this' },
  NOT_FOUND: { status: 404, summary: 'no such resource or route' },
  METHOD_NOT_ALLOWED: { status: 405, summary: 'the route does not accept this method' },
  CONFLICT: { status: 409, summary: 'the resource is not in a state that allows this' },
  PAYLOAD_TOO_LARGE: { status: 413, summary: 'the body exceeds the size limit' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'the content type is not accepted' },
  RULES_INVALID: { status: 422, summary: 'the rule files have problems; the running rule set stays' },
  RATE_LIMITED: { status: 429, summary: 'too many requests' },
  INTERNAL: { status: 500, summary: 'an unexpected error; it was logged' },
  UNAVAILABLE: { status: 503, summary: 'a dependency (PostgreSQL or Redis) is unreachable; retry later' },
  CONFIG_INVALID: { status: 500, summary: 'the configuration is invalid' },
  REDIS_EVICTION_POLICY: { status: 500, summary: "Redis would evict keys: maxmemory-policy must be 'noeviction'" },
  EMBEDDED_DB_IN_USE: { status: 500, summary: 'the embedded database is opened by another process' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

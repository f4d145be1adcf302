import { z } from 'zod';
import { parseAddress, parseMailbox } from '../email/address';
import { DomainRateLimits } from './domain-rate-limits';
import { redisClusterNodes } from './redis-cluster-env';
import { retentionBatchSize, retentionCron, retentionMonths } from './retention-env';

/**
 * The environment the engine reads, and nothing else. Every variable is documented in the README's
 * configuration table; keep the two in step.
 */
const PORT_RULE = 'expected an integer between 0 and 65535 (0: any free port)';
const port = z.coerce.number({ error: PORT_RULE }).int(PORT_RULE).min(0, PORT_RULE).max(65535, PORT_RULE);

const positiveInt = (what: string) =>
  z.coerce.number({ error: `expected ${what}` }).int(`expected ${what}`).positive(`expected ${what}`);

const postgresUrl = z
  .url({ protocol: /^postgres(ql)?$/, error: 'expected a postgres:// or postgresql:// URL' })
  .optional();

const redisUrl = z.url({ protocol: /^rediss?$/, error: 'expected a redis:// or rediss:// URL' });

const smtpUrl = z.url({ protocol: /^smtps?$/, error: 'expected an smtp:// or smtps:// URL' }).optional();

// A mailbox as RFC 5322 §3.4 writes one: a bare addr-spec, or an addr-spec in angle brackets after
// an optional display name. Narrower than the RFC on purpose: no comments, no groups, no second
// address, and no line break, which would let the value inject headers.
const DOMAIN_NAME = String.raw`[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*`;
const ADDR_SPEC = String.raw`[^\s<>@",;:()\[\]\\]{1,64}@${DOMAIN_NAME}`;
const MAILBOX = new RegExp(String.raw`^(?:${ADDR_SPEC}|[^<>\r\n]*<${ADDR_SPEC}>)$`);
const EMAIL_FROM_RULE = 'expected addr@domain or Name <addr@domain>';
// Then the one address rule of the engine (engine/email/address.ts: dot-atom local part, host name
// domain, no look-alike scripts), and a display name without specials or control characters.
const mailbox = z
  .string()
  .regex(MAILBOX, EMAIL_FROM_RULE)
  .superRefine((value, ctx) => {
    const parsed = parseMailbox(value, { allowSingleLabelDomain: true });
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
  });
// Goes into a mailto: URI (RFC 6068) in List-Unsubscribe: only characters that need no
// percent-encoding there, and nothing that could break out of the header.
const MAILTO_RULE = 'expected a bare address such as unsubscribe@news.example.com (letters, digits, ".", "_", "+" or "-" before the @)';
const mailtoAddress = z
  .string()
  .regex(new RegExp(String.raw`^[A-Za-z0-9._+-]{1,64}@${DOMAIN_NAME}$`), MAILTO_RULE)
  .superRefine((value, ctx) => {
    const parsed = parseAddress(value);
    if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `${MAILTO_RULE}; ${parsed.reason}` });
  });

const BOOLEAN_RULE = 'expected true or false';
const boolean = z.stringbool({ truthy: ['true'], falsy: ['false'], error: BOOLEAN_RULE });

const WEBHOOKS_RULE = 'expected a comma-separated list of http:// or https:// URLs';
const webhookUrls = z
  .string()
  .transform((text) => text.split(',').map((u) => u.trim()).filter((u) => u.length > 0))
  .pipe(z.array(z.url({ protocol: /^https?$/, error: WEBHOOKS_RULE })).min(1, WEBHOOKS_RULE).max(20, 'expected at most 20 webhook URLs'));

/**
 * HTTP_RATE_LIMIT_PER_IP / HTTP_RATE_LIMIT_PER_WRITE_KEY: a token bucket, `COUNT/UNIT` (refilled at
 * COUNT per UNIT, holding at most COUNT) with an optional `,burst=N` (holding at most N instead);
 * `0` or `off` turns the limit off (engine/http/rate-limit.ts).
 */
export interface HttpRateLimit {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** Tokens the bucket holds at most: how many requests may come at once after a quiet spell. */
  readonly burst: number;
}
const RATE_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3_600 };
const RATE_LIMIT = /^(\d{1,9})\s*\/\s*([smh])(?:\s*,\s*burst\s*=\s*(\d{1,9}))?$/i;
const RATE_LIMIT_RULE = 'expected COUNT/UNIT with an optional ,burst=N (COUNT and N positive integers, UNIT s, m or h), such as 100/s,burst=1000; or 0 or off to turn the limit off';
// null, not undefined, for off: zod puts a default in place of an undefined result.
const httpRateLimit = z.string().transform((text, ctx): HttpRateLimit | null => {
  const value = text.trim();
  if (value === '0' || value.toLowerCase() === 'off') return null;
  const match = RATE_LIMIT.exec(value);
  const count = Number(match?.[1]);
  const burst = match?.[3] === undefined ? count : Number(match[3]);
  const seconds = RATE_UNITS[(match?.[2] ?? '').toLowerCase()];
  if (!match || seconds === undefined || !(count > 0) || !(burst > 0)) {
    ctx.issues.push({ code: 'custom', message: RATE_LIMIT_RULE, input: text });
    return z.NEVER;
  }
  return { perSecond: count / seconds, burst };
});

/** An empty variable means "unset", as it does for shells and docker-compose `KEY=` lines. */
const emptyAsUnset = (value: unknown) => (value === '' ? undefined : value);

export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production'], { error: 'expected development, test or production' }).default('development'),
  DATABASE_URL: z.preprocess(emptyAsUnset, postgresUrl),
  VAULT_DATABASE_URL: z.preprocess(emptyAsUnset, postgresUrl),
  DATABASE_POOL_SIZE: z.preprocess(emptyAsUnset, positiveInt('a positive integer').default(10)),
  REDIS_URL: z.preprocess(emptyAsUnset, redisUrl.optional()),
  // A Redis Cluster instead of one Redis (engine/config/redis-cluster-env.ts); excludes REDIS_URL.
  REDIS_CLUSTER_NODES: z.preprocess(emptyAsUnset, redisClusterNodes.optional()),
  EMBEDDED_REDIS: z.preprocess(
    emptyAsUnset,
    z.enum(['auto', 'always', 'off'], { error: 'expected auto, always or off' }).default('auto'),
  ),
  SMTP_URL: z.preprocess(emptyAsUnset, smtpUrl),
  EMAIL_FROM: z.preprocess(emptyAsUnset, mailbox.default('consentflow <no-reply@localhost>')),
  HONOR_DNT: z.preprocess(emptyAsUnset, boolean.default(true)),
  ERASURE_DEADLINE_DAYS: z.preprocess(emptyAsUnset, positiveInt('a positive number of days').default(30)),
  ERASURE_SUPPRESS: z.preprocess(emptyAsUnset, boolean.default(true)),
  ERASURE_TOMBSTONE_DAYS: z.preprocess(emptyAsUnset, positiveInt('a positive number of days').default(30)),
  ERASURE_WEBHOOKS: z.preprocess(emptyAsUnset, webhookUrls.optional()),
  ERASURE_WEBHOOK_SECRET: z.preprocess(emptyAsUnset, z.string().min(16, 'expected a secret of at least 16 characters').optional()),
  RETENTION_EVENTS_MONTHS: z.preprocess(emptyAsUnset, retentionMonths.default(13)),
  RETENTION_INACTIVE_PROFILE_MONTHS: z.preprocess(emptyAsUnset, retentionMonths.default(24)),
  RETENTION_BATCH_SIZE: z.preprocess(emptyAsUnset, retentionBatchSize.default(1_000)),
  RETENTION_CRON: z.preprocess(emptyAsUnset, retentionCron.default('30 3 * * *')),
  SMTP_POOL_SIZE: z.preprocess(emptyAsUnset, positiveInt('a positive number of connections').default(5)),
  EMAIL_RATE_LIMIT: z.preprocess(emptyAsUnset, positiveInt('a positive number of messages a second').optional()),
  EMAIL_DOMAIN_RATE_LIMITS: z.preprocess(emptyAsUnset, DomainRateLimits.optional()),
  UNSUBSCRIBE_MAILTO: z.preprocess(emptyAsUnset, mailtoAddress.optional()),
  DKIM_DOMAIN: z.preprocess(emptyAsUnset, z.string().regex(/^[a-z0-9.-]+\.[a-z]{2,}$/i, 'expected a domain such as example.com').optional()),
  DKIM_SELECTOR: z.preprocess(emptyAsUnset, z.string().regex(/^[a-z0-9._-]+$/i, 'expected a DKIM selector such as mail2026').optional()),
  DKIM_PRIVATE_KEY_FILE: z.preprocess(emptyAsUnset, z.string().optional()),
  HTTP_HOST: z.preprocess(emptyAsUnset, z.string().min(1).default('127.0.0.1')),
  HTTP_PORT: z.preprocess(emptyAsUnset, port.default(8080)),
  // A process without the API (`consentflow worker`) has nothing to scrape unless it listens too.
  WORKER_METRICS_PORT: z.preprocess(emptyAsUnset, port.optional()),
  HTTP_TRUST_PROXY: z.preprocess(
    emptyAsUnset,
    z
      .string()
      .regex(/^(true|false|\d{1,2}|[0-9a-fA-F:.\/, ]+)$/, 'expected true, false, a number of proxy hops, or a comma-separated list of proxy addresses/CIDRs')
      .default('false'),
  ),
  // Per process. Per IP: a NAT (an office, a mobile carrier) puts many visitors behind one
  // address, hence the large burst; per write key: a whole site's traffic.
  HTTP_RATE_LIMIT_PER_IP: z.preprocess(emptyAsUnset, httpRateLimit.prefault('100/s,burst=1000')),
  HTTP_RATE_LIMIT_PER_WRITE_KEY: z.preprocess(emptyAsUnset, httpRateLimit.prefault('1000/s,burst=10000')),
  HTTP_BODY_LIMIT: z.preprocess(emptyAsUnset, positiveInt('a positive number of bytes').default(512 * 1024)),
  // It goes into email headers (List-Unsubscribe) and page links: nothing that could end either.
  PUBLIC_URL: z.preprocess(
    emptyAsUnset,
    z
      .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
      .regex(/^[^\s"'<>\\`]+$/, 'expected a URL without spaces, control characters, quotes, angle brackets or backslashes')
      .optional(),
  ),
  RULES_DIR: z.preprocess(emptyAsUnset, z.string().default('./rules')),
  DATA_DIR: z.preprocess(emptyAsUnset, z.string().default('./.data')),
  LOG_LEVEL: z.preprocess(
    emptyAsUnset,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'expected fatal, error, warn, info, debug, trace or silent',
    }).default('info'),
  ),
  QUEUE_PREFIX: z.preprocess(
    emptyAsUnset,
    z
      .string()
      .regex(/^[A-Za-z0-9{}_.-]{1,64}$/, 'expected 1-64 characters of letters, digits, {}, _, . or -')
      .default('{cf}'),
  ),
  SHUTDOWN_TIMEOUT_MS: z.preprocess(emptyAsUnset, positiveInt('a positive number of milliseconds').default(10_000)),
  MASTER_KEY: z.preprocess(emptyAsUnset, z.string().optional()),
  MASTER_KEY_FILE: z.preprocess(emptyAsUnset, z.string().optional()),
  PSEUDONYM_KEY: z.preprocess(emptyAsUnset, z.string().optional()),
  PSEUDONYM_KEY_FILE: z.preprocess(emptyAsUnset, z.string().optional()),
  LINK_SIGNING_KEY: z.preprocess(emptyAsUnset, z.string().optional()),
  LINK_SIGNING_KEY_FILE: z.preprocess(emptyAsUnset, z.string().optional()),
});
export type EnvSchema = z.infer<typeof EnvSchema>;

/** Variables whose values must never be echoed in an error message. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  'MASTER_KEY',
  'PSEUDONYM_KEY',
  'LINK_SIGNING_KEY',
  'DATABASE_URL',
  'VAULT_DATABASE_URL',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'SMTP_URL',
  'ERASURE_WEBHOOKS',
  'ERASURE_WEBHOOK_SECRET',
]);

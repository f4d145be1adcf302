import path from 'node:path';
import { z } from 'zod';
import type { DomainRateLimit } from './domain-rate-limits';
import { EnvSchema, type HttpRateLimit, SECRET_VARIABLES } from './env-schema';
import { hasHashTag, type RedisClusterTarget } from './redis-cluster-env';

export type { HttpRateLimit } from './env-schema';
export type { RedisClusterTarget } from './redis-cluster-env';

export type RedisTarget = { readonly kind: 'url'; readonly url: string } | { readonly kind: 'embedded' };

export interface Config {
  readonly env: 'development' | 'test' | 'production';
  readonly database: {
    /** Unset: embedded PostgreSQL (PGlite) under `dataDir/pgdata`. */
    readonly url: string | undefined;
    /** Unset: the vault lives in schema `vault` of the main database. */
    readonly vaultUrl: string | undefined;
    readonly poolSize: number;
  };
  readonly redis: {
    readonly url: string;
    /** Whether REDIS_URL was given: only a defaulted URL may fall back to an embedded redis-server. */
    readonly urlExplicit: boolean;
    readonly embedded: 'auto' | 'always' | 'off';
    /** REDIS_CLUSTER_NODES: a Redis Cluster's seed nodes; set, `url` is unused and nothing is embedded. */
    readonly cluster: RedisClusterTarget | undefined;
  };
  readonly email: {
    /** Unset: messages are written as `.eml` files under `dataDir/outbox`. */
    readonly smtpUrl: string | undefined;
    /** The From of every email: `addr@domain` or `Name <addr@domain>`. */
    readonly from: string;
    /** Connections of the pooled SMTP transport, per process. */
    readonly poolSize: number;
    /** At most this many emails a second across all email workers; unset: no limit. */
    readonly ratePerSecond: number | undefined;
    /** Per recipient domain (`*`: each domain not listed), across all email workers; unset: none. */
    readonly domainRateLimits: readonly DomainRateLimit[] | undefined;
    /** A mailbox whose messages `consentflow unsubscribe-mail` reads: added to List-Unsubscribe as a mailto (RFC 2369). */
    readonly unsubscribeMailto: string | undefined;
    /** DKIM signing (RFC 6376), when all three are set; the key is read when the mailer starts. */
    readonly dkim: { readonly domain: string; readonly selector: string; readonly privateKeyFile: string } | undefined;
  };
  readonly privacy: {
    /** Whether `DNT: 1` objects to profiling and analytics as `Sec-GPC: 1` does (GDPR Art. 21(5)). */
    readonly honorDnt: boolean;
    readonly erasure: {
      /** Days a request may take before it raises the overdue alert (GDPR Art. 12(3): one month). */
      readonly deadlineDays: number;
      /** Keep a keyed hash of an erased address on the suppression list (README "Privacy guarantees"). */
      readonly suppress: boolean;
      /** Days an erased person's identifiers keep dropping late events before the tombstones go. */
      readonly tombstoneDays: number;
      /** Processors told of each erasure (Art. 19), and the secret their request is signed with. */
      readonly webhooks: readonly string[];
      readonly webhookSecret: string | undefined;
    };
    /** Storage limitation (GDPR Art. 5(1)(e)): engine/privacy/retention, README "Retention". */
    readonly retention: {
      /** Raw events: whole monthly partitions older than this many months are dropped. */
      readonly eventsMonths: number;
      /** Profiles not seen for this many months (and in no active journey) are erased. */
      readonly inactiveProfileMonths: number;
      /** At most this many inactive profiles are put up for erasure per run. */
      readonly batchSize: number;
      /** When the retention job runs (cron, UTC); undefined: not scheduled (`RETENTION_CRON=off`). */
      readonly cron: string | undefined;
    };
  };
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimit: number;
    /** Where a process without the API serves /healthz, /readyz and /metrics; undefined: it serves nothing. */
    readonly workerMetricsPort: number | undefined;
    readonly publicUrl: string;
    /** Whom to believe about the client's address (X-Forwarded-For): fastify's trustProxy. */
    readonly trustProxy: boolean | number | string;
    /** Token buckets per process on the public routes (tracking API, consent, pixels); undefined: off. */
    readonly rateLimits: {
      /** Per client address (IPv6: per /64), as trustProxy lets fastify see it. */
      readonly perIp: HttpRateLimit | undefined;
      /** Per source, counted only once its write key is known to be valid. */
      readonly perWriteKey: HttpRateLimit | undefined;
    };
  };
  readonly rulesDir: string;
  readonly dataDir: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly queuePrefix: string;
  readonly shutdownTimeoutMs: number;
  readonly keySources: {
    readonly master: KeySource;
    readonly pseudonym: KeySource;
    readonly linkSigning: KeySource;
  };
}

export interface KeySource {
  readonly variable: string;
  readonly value: string | undefined;
  readonly file: string | undefined;
}

/** A configuration problem, reported as one line that names the variable and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

function describeIssue(issue: z.core.$ZodIssue, env: Readonly<Record<string, string | undefined>>): string {
  const variable = String(issue.path[0] ?? '(environment)');
  const raw = env[variable];
  const shown = raw === undefined || SECRET_VARIABLES.has(variable) ? '' : `=${JSON.stringify(raw)}`;
  return `${variable}${shown}: ${issue.message}`;
}

function parseTrustProxy(value: string): boolean | number | string {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return /^\d+$/.test(value) ? Number(value) : value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses the environment once. Nothing else in the engine reads `process.env`: entry points call this
 * and pass the frozen result down.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, cwd = process.cwd()): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => describeIssue(issue, env));
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const e = parsed.data;
  if (e.VAULT_DATABASE_URL && !e.DATABASE_URL) {
    throw new ConfigError(
      'invalid configuration: VAULT_DATABASE_URL is set but DATABASE_URL is not; a separate vault database needs an external main database (set both, or neither for the embedded default)',
    );
  }
  const dkimSet = [e.DKIM_DOMAIN, e.DKIM_SELECTOR, e.DKIM_PRIVATE_KEY_FILE].filter((v) => v !== undefined).length;
  if (dkimSet > 0 && dkimSet < 3) {
    throw new ConfigError('invalid configuration: DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE go together; set all three to sign, or none');
  }
  for (const [name, file] of [
    ['MASTER_KEY', e.MASTER_KEY_FILE],
    ['PSEUDONYM_KEY', e.PSEUDONYM_KEY_FILE],
    ['LINK_SIGNING_KEY', e.LINK_SIGNING_KEY_FILE],
  ] as const) {
    if (e[name] !== undefined && file !== undefined) {
      throw new ConfigError(`invalid configuration: ${name} and ${name}_FILE are both set; set one of them`);
    }
  }
  if (e.REDIS_CLUSTER_NODES && e.REDIS_URL) {
    throw new ConfigError('invalid configuration: REDIS_URL and REDIS_CLUSTER_NODES are both set; set REDIS_URL for one Redis, or REDIS_CLUSTER_NODES for a Redis Cluster');
  }
  if (e.REDIS_CLUSTER_NODES && !hasHashTag(e.QUEUE_PREFIX)) {
    throw new ConfigError(
      `invalid configuration: QUEUE_PREFIX=${JSON.stringify(e.QUEUE_PREFIX)} has no hash tag, which a Redis Cluster (REDIS_CLUSTER_NODES) needs: wrap it, or a part of it, in braces, such as {cf}`,
    );
  }
  const dataDir = path.resolve(cwd, e.DATA_DIR);
  const config: Config = {
    env: e.NODE_ENV,
    database: { url: e.DATABASE_URL, vaultUrl: e.VAULT_DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE },
    redis: {
      url: e.REDIS_URL ?? 'redis://127.0.0.1:6379',
      // A cluster is as explicit as a URL: never replaced by an embedded redis-server.
      urlExplicit: e.REDIS_URL !== undefined || e.REDIS_CLUSTER_NODES !== undefined,
      embedded: e.EMBEDDED_REDIS,
      cluster: e.REDIS_CLUSTER_NODES,
    },
    email: {
      smtpUrl: e.SMTP_URL,
      from: e.EMAIL_FROM,
      poolSize: e.SMTP_POOL_SIZE,
      ratePerSecond: e.EMAIL_RATE_LIMIT,
      domainRateLimits: e.EMAIL_DOMAIN_RATE_LIMITS,
      unsubscribeMailto: e.UNSUBSCRIBE_MAILTO,
      dkim:
        e.DKIM_DOMAIN && e.DKIM_SELECTOR && e.DKIM_PRIVATE_KEY_FILE
          ? { domain: e.DKIM_DOMAIN, selector: e.DKIM_SELECTOR, privateKeyFile: path.resolve(cwd, e.DKIM_PRIVATE_KEY_FILE) }
          : undefined,
    },
    privacy: {
      honorDnt: e.HONOR_DNT,
      erasure: {
        deadlineDays: e.ERASURE_DEADLINE_DAYS,
        suppress: e.ERASURE_SUPPRESS,
        tombstoneDays: e.ERASURE_TOMBSTONE_DAYS,
        webhooks: e.ERASURE_WEBHOOKS ?? [],
        webhookSecret: e.ERASURE_WEBHOOK_SECRET,
      },
      retention: {
        eventsMonths: e.RETENTION_EVENTS_MONTHS,
        inactiveProfileMonths: e.RETENTION_INACTIVE_PROFILE_MONTHS,
        batchSize: e.RETENTION_BATCH_SIZE,
        cron: e.RETENTION_CRON ?? undefined,
      },
    },
    http: {
      host: e.HTTP_HOST,
      port: e.HTTP_PORT,
      bodyLimit: e.HTTP_BODY_LIMIT,
      workerMetricsPort: e.WORKER_METRICS_PORT,
      publicUrl: (e.PUBLIC_URL ?? `http://localhost:${e.HTTP_PORT}`).replace(/\/+$/, ''),
      trustProxy: parseTrustProxy(e.HTTP_TRUST_PROXY),
      rateLimits: { perIp: e.HTTP_RATE_LIMIT_PER_IP ?? undefined, perWriteKey: e.HTTP_RATE_LIMIT_PER_WRITE_KEY ?? undefined },
    },
    rulesDir: path.resolve(cwd, e.RULES_DIR),
    dataDir,
    logLevel: e.LOG_LEVEL,
    queuePrefix: e.QUEUE_PREFIX,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    keySources: {
      master: { variable: 'MASTER_KEY', value: e.MASTER_KEY, file: e.MASTER_KEY_FILE },
      pseudonym: { variable: 'PSEUDONYM_KEY', value: e.PSEUDONYM_KEY, file: e.PSEUDONYM_KEY_FILE },
      linkSigning: { variable: 'LINK_SIGNING_KEY', value: e.LINK_SIGNING_KEY, file: e.LINK_SIGNING_KEY_FILE },
    },
  };
  return deepFreeze(config);
}

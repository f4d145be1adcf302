import type { SecurityMeasure } from '../../schemas/processing-records';
import type { Config, HttpRateLimit } from '../config/config';

/**
 * Art. 30(1)(g) with Art. 32(1): the technical measures in place, as the code implements them
 * (engine/vault, engine/identity, engine/privacy, engine/auth, engine/audit, engine/consent/links)
 * and as this configuration switches them. Organisational measures are the controller's to add.
 */

const perSecond = (limit: HttpRateLimit) => `${Number(limit.perSecond.toFixed(3))} requests a second (bursts of ${limit.burst})`;

function rateLimits(config: Config): string {
  const { perIp, perWriteKey } = config.http.rateLimits;
  const { ratePerSecond, domainRateLimits } = config.email;
  return [
    `public routes (tracking API, consent, pixels): ${perIp ? `${perSecond(perIp)} per client address (HTTP_RATE_LIMIT_PER_IP)` : 'no limit per client address (HTTP_RATE_LIMIT_PER_IP off)'}, ` +
      `${perWriteKey ? `${perSecond(perWriteKey)} per source (HTTP_RATE_LIMIT_PER_WRITE_KEY)` : 'no limit per source (HTTP_RATE_LIMIT_PER_WRITE_KEY off)'}, answered 429 with Retry-After`,
    'the tracking API refuses an event above 32 KB and a request above 500 KB or 2,500 events',
    `the admin API refuses a body above ${config.http.bodyLimit} bytes (HTTP_BODY_LIMIT)`,
    ratePerSecond === undefined ? 'email: no global rate (EMAIL_RATE_LIMIT unset)' : `email: at most ${ratePerSecond} a second across all email workers (EMAIL_RATE_LIMIT)`,
    domainRateLimits === undefined || domainRateLimits.length === 0
      ? 'no per-domain email limits (EMAIL_DOMAIN_RATE_LIMITS unset)'
      : `${domainRateLimits.length} per-domain email limit(s) (EMAIL_DOMAIN_RATE_LIMITS), a send over its limit deferred, never dropped`,
  ].join('; ');
}

export function securityMeasures(config: Config): SecurityMeasure[] {
  const { erasure } = config.privacy;
  return [
    {
      measure: 'encryption of personal data, per person (GDPR Art. 32(1)(a))',
      description:
        'identifying data is kept only in the vault, each field encrypted with AES-256-GCM (random 96-bit IV, bound to the profile and field) under a data key of its own per person; ' +
        'each data key is stored only wrapped (AES-256-GCM) by MASTER_KEY, which lives in the environment or a key file, never in the database',
    },
    {
      measure: 'crypto-shredding on erasure (GDPR Art. 17)',
      description: "erasure destroys the person's wrapped data key with their vault rows, so every copy of their ciphertext, in backups too, becomes unreadable",
    },
    {
      measure: 'pseudonymisation: keyed pseudonyms and blind indexes (GDPR Art. 4(5), 25)',
      description:
        'profiles have random ids; email addresses, phone numbers, user ids and anonymous ids are looked up by HMAC-SHA256 blind indexes under PSEUDONYM_KEY; ' +
        'job ids, log ids and audit targets are keyed pseudonyms; without the key (outside the database) a dump re-identifies nobody',
    },
    {
      measure: 'vault separation',
      description: config.database.vaultUrl
        ? 'the vault is a separate database (VAULT_DATABASE_URL), with its own connection pool'
        : 'the vault is schema `vault` of the main database (VAULT_DATABASE_URL unset: no separate vault database)',
    },
    {
      measure: 'data minimisation at intake (GDPR Art. 5(1)(c), 25(2))',
      description:
        'only the properties and traits listed in rules/properties.yaml are stored; kept text is scrubbed of email addresses, phone, PESEL and card numbers; ' +
        'IP addresses are cut to their network (IPv4 /24, IPv6 /48) and user agents to browser, OS and device type',
    },
    {
      measure: 'sealed queue payloads',
      description: 'job payloads that may carry personal data are sealed (deflate, then AES-256-GCM under a key derived from MASTER_KEY) before they reach Redis; completed jobs are removed at once',
    },
    {
      measure: 'role-based API keys',
      description:
        'the admin API takes bearer keys of 256 random bits, stored only as SHA-256 hashes, revocable at once and optionally expiring, their last use recorded; ' +
        'each key has one role (marketer, operator, privacy_officer, admin) and every admin route declares the roles it allows (403 otherwise, recorded in the audit log); ' +
        'only privacy_officer keys and the email worker decrypt personal data',
    },
    {
      measure: 'hash-chained audit log (GDPR Art. 5(2), 30, 32(1)(b))',
      description:
        'app.audit_log records who did what to whom (a keyed pseudonym, never personal data), when, with what outcome and, for a decryption, why; ' +
        'each entry is chained to the previous one by an HMAC under a key derived from PSEUDONYM_KEY, numbers are consecutive and a trigger refuses updates and deletes, ' +
        'so an edited, removed or inserted entry breaks the chain (`consentflow report incident` says whether it verifies)',
    },
    {
      measure: 'rate and size limits',
      description: rateLimits(config),
    },
    {
      measure: 'signed links',
      description:
        'confirmation, preference, unsubscribe, "forget me", open and click links carry an HMAC-SHA256 under LINK_SIGNING_KEY over their kind and payload (pseudonymous ids only, never an address); ' +
        'confirmation and "forget me" links expire; a click link cannot redirect elsewhere than its signed destination',
    },
    {
      measure: 'erasure verification and receipts',
      description:
        "after an erasure the person is looked up again by index in every column the database catalogue marks as a person's and in Redis by job id (a deep scan of every table and key on request); " +
        `the receipt names nobody and is signed with an HMAC under a key derived from LINK_SIGNING_KEY; processors are told by webhook${erasure.webhooks.length === 0 ? ' (none configured)' : erasure.webhookSecret ? ' (signed)' : ' (unsigned: ERASURE_WEBHOOK_SECRET unset)'}; ` +
        `late events are dropped for ${erasure.tombstoneDays} days`,
    },
    {
      measure: 'consent proof',
      description: 'the consent ledger is append-only (a trigger refuses update and delete) and records the hash of the notice text shown; consent is checked again at each send',
    },
    {
      measure: 'email authentication',
      description: config.email.dkim ? `DKIM signing on (RFC 6376): domain ${config.email.dkim.domain}, selector ${config.email.dkim.selector}` : 'DKIM signing off (DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY_FILE unset)',
    },
    {
      measure: 'logs without personal data',
      description: 'log fields known to carry personal data or credentials are redacted, every line is scrubbed of email addresses and full IPv4 addresses, and request logs omit query strings and client addresses',
    },
    {
      measure: 'keys outside the database',
      description:
        config.env === 'production'
          ? 'MASTER_KEY, PSEUDONYM_KEY and LINK_SIGNING_KEY come from the environment or key files; production refuses to start without them'
          : `MASTER_KEY, PSEUDONYM_KEY and LINK_SIGNING_KEY come from the environment or key files (NODE_ENV=${config.env}: development keys may be generated under DATA_DIR/keys; production refuses them)`,
    },
  ];
}

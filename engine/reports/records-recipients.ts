import path from 'node:path';
import type { ProcessingRecords, Recipient } from '../../schemas/processing-records';
import type { Config } from '../config';

/**
 * Art. 30(1)(d) recipients and (e) transfers, from the configuration. SMTP_URL and
 * ERASURE_WEBHOOKS may carry credentials (`smtp://user:pass@host`, `?token=`): the records show the
 * relay as scheme, host and port, and each webhook as origin and path, nothing else.
 */

/** `smtp://user:pass@relay.example.com:587?pool=true` → `smtp://relay.example.com:587`. */
export function relayAddress(smtpUrl: string): string {
  try {
    const url = new URL(smtpUrl);
    return `${url.protocol}//${url.host}`;
  } catch {
    // The configuration only admits URLs; never echo what could not be parsed.
    return '(an SMTP relay)';
  }
}

/**
 * `https://u:p@hooks.example.com/catch/123/secret?token=x` → `https://hooks.example.com`: the
 * origin only, since capability URLs carry their secret in the path as often as in the query.
 */
export function webhookAddress(webhookUrl: string): string {
  try {
    return new URL(webhookUrl).origin;
  } catch {
    return '(a webhook)';
  }
}

export function recipientsOf(config: Config): Recipient[] {
  const out: Recipient[] = [];
  const { smtpUrl, dkim } = config.email;
  if (smtpUrl) {
    out.push({
      kind: 'smtp_relay',
      name: 'SMTP relay',
      address: relayAddress(smtpUrl),
      receives: `each email the engine sends (double opt-in confirmations, campaign email): the recipient's address and the message${dkim ? `; DKIM-signed for ${dkim.domain}` : ''}`,
    });
  } else {
    out.push({
      kind: 'outbox_files',
      name: 'outbox files (no relay)',
      address: path.join(config.dataDir, 'outbox'),
      receives: 'SMTP_URL is unset: each email is written as an .eml file on the engine\'s own disk instead of being sent; nothing leaves the engine',
    });
  }
  const signed = config.privacy.erasure.webhookSecret !== undefined;
  for (const url of config.privacy.erasure.webhooks) {
    out.push({
      kind: 'erasure_webhook',
      name: 'processor told of erasures (GDPR Art. 19)',
      address: webhookAddress(url),
      receives: `one POST per erasure request with the person's email address, user id and anonymous id, for the processor to erase them too${signed ? '; signed with HMAC-SHA256 (ERASURE_WEBHOOK_SECRET)' : '; not signed (ERASURE_WEBHOOK_SECRET is unset)'}`,
    });
  }
  return out;
}

export function transfersOf(): ProcessingRecords['transfers'] {
  return {
    configured: false,
    statement:
      'none configured: the engine itself transfers no personal data to a third country or an international organisation. ' +
      'Where the SMTP relay, a processor behind an erasure webhook, or the hosting of PostgreSQL and Redis is outside the EEA, record the transfer and its safeguards (GDPR Art. 44-49) here',
  };
}

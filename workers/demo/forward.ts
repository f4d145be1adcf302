import fs from 'node:fs';
import { createTransport } from 'nodemailer';
import { readOutbox } from './eml';

/**
 * `consentflow demo --forward-to URL`: the story's emails, as the engine wrote them to the outbox
 * (byte for byte: same Message-ID, List-Unsubscribe, links), delivered afterwards to an SMTP server
 * such as the Mailpit of docker-compose.yml, to read them in its web UI. The story itself always
 * runs on the outbox: it follows the links it finds there.
 */
export async function forwardOutbox(outboxDir: string, smtpUrl: string): Promise<number> {
  const transport = createTransport(smtpUrl);
  try {
    let forwarded = 0;
    for (const message of readOutbox(outboxDir)) {
      const from = bareAddress(message.header('from'));
      const to = bareAddress(message.to);
      if (!from || !to) throw new Error(`${message.file}: no From or To address to forward it with`);
      await transport.sendMail({ envelope: { from, to: [to] }, raw: fs.readFileSync(message.file) });
      forwarded++;
    }
    return forwarded;
  } finally {
    transport.close();
  }
}

/**
 * The address of a header the engine wrote (`Name <addr>` or `addr`). Not the strict address rule of
 * engine/email/address.ts: the default From, no-reply@localhost, has no dot in its domain.
 */
function bareAddress(header: string | undefined): string | undefined {
  const text = (header ?? '').trim();
  const address = /<([^<>\s]+)>$/.exec(text)?.[1] ?? (/^[^<>\s]+@[^<>\s]+$/.test(text) ? text : undefined);
  return address;
}

/** The rule for --forward-to: an smtp:// or smtps:// URL, checked before the demo starts anything. */
export function forwardTarget(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`--forward-to: "${value}" is not a URL; expected smtp://HOST:PORT or smtps://HOST:PORT (Mailpit: smtp://127.0.0.1:1025)`);
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw new Error(`--forward-to: expected smtp://HOST:PORT or smtps://HOST:PORT (Mailpit: smtp://127.0.0.1:1025), not ${url.protocol}//`);
  }
  return value;
}

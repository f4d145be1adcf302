/**
 * The ceiling of `npm run bench:email`: a minimal client sending one pre-rendered message over and
 * over, as fast as the sink takes it, for a fixed time. It uses the engine mailer's transport
 * options (nodemailer, pooled, the same number of connections and timeouts) and keeps more messages
 * in flight than the pool has connections, so no connection ever waits for the client. With `raw`,
 * the message's MIME is built once before the clock starts and the same bytes go out every time:
 * what the sink and the SMTP dialogue cost without nodemailer composing each message. Run as its
 * own process by scripts/bench/email.ts, as the engine's worker is: `node --import tsx
 * scripts/bench/smtp-client.ts <spec.json>`; prints one JSON line `{sent, failed, seconds}`.
 */
import fs from 'node:fs';
import { createTransport, type SendMailOptions } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';

interface Spec {
  readonly url: string;
  readonly poolSize: number;
  readonly seconds: number;
  readonly from: string;
  /** to, subject, text, html, headers: what the engine's mailer hands to nodemailer. */
  readonly message: SendMailOptions;
  readonly raw?: boolean;
}

async function main(): Promise<void> {
  const spec = JSON.parse(fs.readFileSync(process.argv[2] ?? '', 'utf8')) as Spec;
  const transport = createTransport(
    { url: spec.url, pool: true, maxConnections: spec.poolSize, connectionTimeout: 10_000, greetingTimeout: 10_000, dnsTimeout: 10_000, socketTimeout: 30_000 },
    { from: spec.from },
  );
  const window = spec.poolSize * 4;
  const raw = spec.raw
    ? await new MailComposer({ ...spec.message, from: spec.from, messageId: '<ceiling-raw@consentflow>' }).compile().build()
    : undefined;
  const envelope = { from: spec.from.replace(/^.*<([^>]+)>$/, '$1'), to: [String(spec.message.to)] };
  const started = performance.now();
  const until = started + spec.seconds * 1_000;
  let sent = 0;
  let failed = 0;
  let n = 0;
  const lane = async (): Promise<void> => {
    while (performance.now() < until) {
      n++;
      try {
        await transport.sendMail(raw ? { envelope, raw } : { ...spec.message, messageId: `<ceiling-${n}@consentflow>` });
        sent++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  const seconds = (performance.now() - started) / 1_000;
  transport.close();
  process.stdout.write(`${JSON.stringify({ sent, failed, seconds })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`smtp-client failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

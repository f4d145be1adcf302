import { createVerify, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createMailer, DeliveryError, type Mailer, type OutgoingEmail } from '../../engine/email/mailer';
import { tempDir } from '../support/config';
import { capturingLogger } from '../support/log-capture';
import { freePort } from '../support/redis-server';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';

const FROM = 'Shop News <news@shop.example>';
const RECIPIENT = 'jan.kowalski@example.com';
// Longer than the 76 characters a quoted-printable or base64 line may hold, so it gets wrapped.
const LONG_URL = `https://shop.example/consent/confirm?token=${'a1B2c3D4e5'.repeat(12)}&purpose=newsletter`;

function email(overrides: Partial<OutgoingEmail> = {}): OutgoingEmail {
  return {
    to: RECIPIENT,
    subject: 'Potwierdź zapis — confirm your subscription',
    text: `Hello,\n\nplease confirm: ${LONG_URL}\n\nThank you.`,
    html: `<p>Please <a href="${LONG_URL}">confirm</a>.</p>`,
    headers: { 'List-Unsubscribe': '<https://shop.example/u/abc>' },
    messageId: 'send-0001',
    ...overrides,
  };
}

async function deliveryError(promise: Promise<unknown>): Promise<DeliveryError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DeliveryError);
    return err as DeliveryError;
  }
  throw new Error('expected the delivery to fail');
}

describe('mailer over SMTP', () => {
  const servers: TestSmtpServer[] = [];
  const mailers: Mailer[] = [];
  const capture = capturingLogger();

  async function setup(options: Parameters<typeof startTestSmtpServer>[0] = {}): Promise<{ server: TestSmtpServer; mailer: Mailer }> {
    const server = await startTestSmtpServer(options);
    servers.push(server);
    const mailer = createMailer({ smtpUrl: server.url, from: FROM, outboxDir: tempDir('cf-outbox'), log: capture.log });
    mailers.push(mailer);
    return { server, mailer };
  }

  afterAll(async () => {
    for (const mailer of mailers) await mailer.close();
    for (const server of servers) await server.close();
  });

  it('delivers the message to the relay with its headers, and a long URL survives the transfer encoding', async () => {
    const { server, mailer } = await setup();
    const delivery = await mailer.send(email());
    expect(delivery).toEqual({ via: 'smtp', messageId: '<send-0001@consentflow>', response: expect.stringMatching(/^250 /) });

    const [received] = await server.waitForMessages(1);
    expect(received).toBeDefined();
    const message = received!;
    expect(message.from).toBe('news@shop.example');
    expect(message.to).toEqual([RECIPIENT]);
    expect(message.subject).toBe('Potwierdź zapis — confirm your subscription');
    expect(message.header('From')).toBe(FROM);
    expect(message.header('to')).toBe(RECIPIENT);
    expect(message.header('Message-ID')).toBe('<send-0001@consentflow>');
    expect(message.header('List-Unsubscribe')).toBe('<https://shop.example/u/abc>');
    expect(message.raw).not.toContain(LONG_URL); // wrapped on the wire…
    expect(message.text).toContain(LONG_URL); // …and whole again once decoded
    expect(message.text).toContain('Thank you.');

    expect(capture.text()).toContain('"via":"smtp"');
    expect(capture.text()).not.toContain(RECIPIENT);
  });

  it('signs with DKIM when configured, both unsubscribe headers among the signed ones, and verifiably', async () => {
    const server = await startTestSmtpServer();
    servers.push(server);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = path.join(tempDir('cf-dkim'), 'dkim.pem');
    fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const mailer = createMailer({
      smtpUrl: server.url,
      from: FROM,
      outboxDir: tempDir('cf-outbox'),
      log: capture.log,
      dkim: { domain: 'shop.example', selector: 'mail2026', privateKeyFile: keyFile },
    });
    mailers.push(mailer);
    await mailer.send(
      email({ messageId: 'dkim-1', headers: { 'List-Unsubscribe': '<https://shop.example/u/abc>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } }),
    );
    const [received] = await server.waitForMessages(1);
    const signature = received?.header('dkim-signature') ?? '';
    expect(signature).toMatch(/\bd=shop\.example;/);
    expect(signature).toMatch(/\bs=mail2026;/);
    const signed = /\bh=([^;]+);/.exec(signature.replace(/\s+/g, ''))?.[1]?.toLowerCase().split(':') ?? [];
    expect(signed).toEqual(expect.arrayContaining(['from', 'subject', 'message-id', 'list-unsubscribe', 'list-unsubscribe-post']));
    // The signature verifies with the public key over the headers it names (relaxed canonicalization, RFC 6376 §3.4.2).
    const raw = received?.raw ?? '';
    const head = raw.slice(0, raw.search(/\r?\n\r?\n/));
    const fields = head.replace(/\r?\n(?=[ \t])/g, '\u0000').split(/\r?\n/).map((line) => line.replace(/\u0000/g, '\r\n'));
    const relaxed = (line: string) => {
      const colon = line.indexOf(':');
      return `${line.slice(0, colon).trim().toLowerCase()}:${line.slice(colon + 1).replace(/\r\n/g, '').replace(/[ \t]+/g, ' ').trim()}`;
    };
    const byName = new Map<string, string[]>();
    for (const f of fields) {
      const name = f.slice(0, f.indexOf(':')).trim().toLowerCase();
      byName.set(name, [...(byName.get(name) ?? []), f]);
    }
    const canonical = signed
      .map((name) => byName.get(name)?.pop())
      .filter((f): f is string => f !== undefined)
      .map((f) => `${relaxed(f)}\r\n`)
      .join('');
    const dkimField = fields.find((f) => /^dkim-signature:/i.test(f)) as string;
    const unsigned = relaxed(dkimField).replace(/\bb=[^;]*$/, 'b=').replace(/(\bb=)[^;]*;/, '$1;');
    const b = /\bb=([^;]+)$/.exec(relaxed(dkimField).replace(/ /g, ''))?.[1] ?? /\bb=([^;]+);/.exec(relaxed(dkimField).replace(/ /g, ''))?.[1] ?? '';
    const ok = createVerify('RSA-SHA256').update(canonical + unsigned).verify(publicKey, Buffer.from(b, 'base64'));
    expect(ok).toBe(true);
  });

  it('keeps a messageId that already names its domain', async () => {
    const { server, mailer } = await setup();
    const delivery = await mailer.send(email({ messageId: 'send-0002@mail.shop.example' }));
    expect(delivery.messageId).toBe('<send-0002@mail.shop.example>');
    const [message] = await server.waitForMessages(1);
    expect(message?.header('Message-ID')).toBe('<send-0002@mail.shop.example>');
  });

  it('sends several messages over the pool', async () => {
    const { server, mailer } = await setup();
    await Promise.all([1, 2, 3, 4, 5].map((n) => mailer.send(email({ messageId: `batch-${n}` }))));
    const messages = await server.waitForMessages(5);
    expect(messages.map((m) => m.header('Message-ID')).sort()).toEqual([1, 2, 3, 4, 5].map((n) => `<batch-${n}@consentflow>`));
  });

  it('reports a 5xx refusal as permanent, without the address', async () => {
    const { server, mailer } = await setup({ rejectWith: { code: 550, message: `5.1.1 <${RECIPIENT}>: mailbox unavailable` } });
    const error = await deliveryError(mailer.send(email()));
    expect(error.permanent).toBe(true);
    expect(error.responseCode).toBe(550);
    expect(error.command).toBe('RCPT TO');
    expect(error.message).toContain('550');
    expect(error.message).not.toContain(RECIPIENT);
    expect(server.messages).toHaveLength(0);
  });

  it('reports a 5xx refusal after DATA as permanent', async () => {
    const { mailer } = await setup({ rejectWith: { code: 554, message: '5.7.1 message refused', at: 'data' } });
    const error = await deliveryError(mailer.send(email()));
    expect(error.permanent).toBe(true);
    expect(error.responseCode).toBe(554);
  });

  it('reports a 4xx reply as transient', async () => {
    const { mailer } = await setup({ rejectWith: { code: 451, message: '4.3.0 try again later' } });
    const error = await deliveryError(mailer.send(email()));
    expect(error.permanent).toBe(false);
    expect(error.responseCode).toBe(451);
  });

  it('reports an unreachable relay as transient', async () => {
    const port = await freePort();
    const mailer = createMailer({ smtpUrl: `smtp://127.0.0.1:${port}`, from: FROM, outboxDir: tempDir('cf-outbox'), log: capture.log });
    mailers.push(mailer);
    const error = await deliveryError(mailer.send(email()));
    expect(error.permanent).toBe(false);
    expect(error.responseCode).toBeUndefined();
    expect(error.code).toBe('ESOCKET');
  });

  it('refuses a messageId that could inject a header, permanently', async () => {
    const { mailer } = await setup();
    const error = await deliveryError(mailer.send(email({ messageId: 'x\r\nBcc: victim@example.com' })));
    expect(error.permanent).toBe(true);
    expect(error.message).not.toContain('victim@example.com');
  });
});

describe('mailer without SMTP_URL', () => {
  it('writes each message as a readable .eml file only its owner can read, and logs no address', async () => {
    const outboxDir = path.join(tempDir('cf-data'), 'outbox');
    const capture = capturingLogger();
    const mailer = createMailer({ smtpUrl: undefined, from: FROM, outboxDir, log: capture.log });
    const delivery = await mailer.send(email({ messageId: 'send/0003:retry' }));
    await mailer.close();

    if (delivery.via !== 'outbox') throw new Error(`expected an outbox delivery, got ${delivery.via}`);
    expect(delivery.messageId).toBe('<send/0003:retry@consentflow>');
    expect(path.dirname(delivery.path)).toBe(outboxDir);
    expect(path.basename(delivery.path)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z-send_0003_retry\.eml$/);
    expect(fs.readdirSync(outboxDir)).toEqual([path.basename(delivery.path)]); // no temporary file left
    expect(fs.statSync(outboxDir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(delivery.path).mode & 0o777).toBe(0o600);

    const raw = fs.readFileSync(delivery.path, 'utf8');
    expect(raw).toMatch(/^From: Shop News <news@shop\.example>\r$/m);
    expect(raw).toMatch(new RegExp(`^To: ${RECIPIENT.replace(/\./g, '\\.')}\r$`, 'm'));
    expect(raw).toMatch(/^Message-ID: <send\/0003:retry@consentflow>\r$/m);
    expect(raw).toMatch(/^Subject: /m);
    expect(raw).toMatch(/^Date: /m);

    expect(capture.lines).toHaveLength(1);
    const line = JSON.parse(capture.lines[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({ level: 30, messageId: '<send/0003:retry@consentflow>', via: 'outbox', msg: 'email delivered' });
    expect(capture.text()).not.toContain(RECIPIENT);
    expect(capture.text()).not.toContain('jan.kowalski');
  });

  it('refuses to send once closed', async () => {
    const mailer = createMailer({ smtpUrl: undefined, from: FROM, outboxDir: tempDir('cf-outbox'), log: capturingLogger().log });
    await mailer.close();
    const error = await deliveryError(mailer.send(email()));
    expect(error.permanent).toBe(false);
  });
});

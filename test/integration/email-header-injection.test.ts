import fs from 'node:fs';
import path from 'node:path';
import { createMailer } from '../../engine/email/mailer';
import { performSend, type SendDeps } from '../../engine/email/send-step';
import { tempDir } from '../support/config';
import { basicAuth, postJson, startTestEngine, type TestEngine } from '../support/engine';
import { rulesWithoutQuietHours, sendDepsOf, subscriberWithTraits } from '../support/sends';
import { type ReceivedMessage, startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';

type ErrorBody = { error: { code: string; message: string }; rejected?: Array<{ index: number; code: string; message: string }> };

/**
 * Header injection through the real path (issue 8): a hostile address is refused by the API with a
 * 400 naming the field; a name or trait holding CR/LF (stored by a path that skipped the API's
 * checks: an import, data older than them) reaches the real SMTP server as one Subject header, and
 * an address in the vault the rule refuses fails its send for good, before the relay sees anything.
 */
describe('email header injection, end to end', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  let deps: SendDeps;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    // The welcome's subject also shows a trait: data from outside, in a header.
    const rules = rulesWithoutQuietHours();
    const welcome = path.join(rules, 'templates', 'welcome.html');
    fs.writeFileSync(welcome, fs.readFileSync(welcome, 'utf8').replace(/^subject: .*$/m, `subject: 'Welcome, {{ first_name | default: "there" }} of {{ traits.company | default: "nowhere" }}!'`));
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rules }, ['events']);
    deps = sendDepsOf(engine, createMailer({ smtpUrl: smtp.url, from: engine.services.config.email.from, outboxDir: tempDir('cf-outbox'), log: engine.services.log }));
  });
  afterAll(async () => {
    await deps.mailer.close();
    await engine.stop();
    await smtp.close();
  });
  const auth = () => ({ authorization: basicAuth(engine.writeKey) });
  const db = () => engine.services.databases.db;

  it.each([
    ['CR LF and a Bcc header', 'ann@example.com\r\nBcc: victim@evil.example', /control characters|line breaks/],
    ['a quoted local part hiding CR LF', '"a\r\nBcc: victim@evil.example"@example.com', /control characters|line breaks/],
    ['a quoted local part', '"ann smith"@example.com', /quoted local parts/],
    ['group syntax', 'friends: ann@example.com, victim@evil.example;', /no lists, groups/],
    ['a display name', 'Ann <ann@example.com>', /angle brackets/],
    ['a comment', 'ann@example.com (Ann)', /comments/],
    ['a look-alike domain (pаypal.com, Cyrillic а)', 'ann@p\u0430ypal.com', /mixes letters of Cyrillic and Latin/],
    ['an overlong local part', `${'a'.repeat(65)}@example.com`, /longer than 64 octets/],
  ])('identify with %s in traits.email: 400, naming the field and what is allowed', async (_what, email, reason) => {
    const res = await postJson(`${engine.url}/v1/identify`, { userId: 'hostile', traits: { email, plan: 'pro' } }, auth());
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe('VALIDATION_FAILED');
    expect(body.error.message).toMatch(/^traits\.email: /);
    expect(body.error.message).toMatch(reason);
  });

  it('a batch refuses the event whose context.traits.email is hostile, by index, and accepts the others', async () => {
    const res = await postJson(
      `${engine.url}/v1/batch`,
      {
        batch: [
          { type: 'track', event: 'Signed Up', userId: 'b-1', context: { traits: { email: 'group: victim@evil.example;' } } },
          { type: 'identify', userId: 'b-2', traits: { email: 'fine@example.com' } },
        ],
      },
      auth(),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; rejected: Array<{ index: number; message: string }> };
    expect(body.accepted).toBe(1);
    expect(body.rejected).toEqual([{ index: 0, code: 'VALIDATION_FAILED', message: expect.stringMatching(/^context\.traits\.email: expected one plain email address local@domain: /) }]);
  });

  /** A subscriber stored as an import would store them: past the API's checks, straight into the batch. */
  const subscriber = (userId: string, traits: Record<string, unknown>) => subscriberWithTraits(engine, userId, traits);

  /** The header lines of a message as received, unfolded, by name. */
  function headerNames(message: ReceivedMessage): string[] {
    const head = message.raw.slice(0, message.raw.indexOf('\r\n\r\n')).replace(/\r\n(?=[ \t])/g, '');
    return head.split('\r\n').map((line) => (/^([!-9;-~]+):/.exec(line)?.[1] ?? `(not a header: ${line})`).toLowerCase());
  }

  it('a first name and a trait holding CR/LF render into one Subject header at the real SMTP server; nothing is injected', async () => {
    const email = 'kim.crlf@example.com';
    const { sendId } = await subscriber('crlf-person', {
      email,
      firstName: 'Kim\r\nBcc: victim@evil.example',
      company: 'Acme\r\n\r\n<html>injected body',
    });
    expect(await performSend(deps, sendId)).toMatchObject({ state: 'sent' });
    const received = smtp.messages.filter((m) => m.to.includes(email));
    expect(received).toHaveLength(1);
    const [message] = received as [ReceivedMessage];
    expect(message.to).toEqual([email]);
    expect(message.subject).toBe('Welcome, Kim Bcc: victim@evil.example of Acme <html>injected body!');
    const names = headerNames(message);
    expect(names.filter((n) => n === 'subject')).toHaveLength(1);
    expect(names.filter((n) => n === 'to')).toHaveLength(1);
    expect(names).not.toContain('bcc');
    expect(names.filter((n) => n.startsWith('(not a header'))).toEqual([]);
    expect(new Set(names)).toEqual(new Set(['list-unsubscribe', 'list-unsubscribe-post', 'x-consentflow-campaign', 'from', 'to', 'subject', 'message-id', 'date', 'mime-version', 'content-type']));
    // Nobody else got anything: the relay saw one recipient.
    expect(smtp.messages.some((m) => m.to.includes('victim@evil.example'))).toBe(false);
  });

  it('an address in the vault the rule refuses: the send fails for good with the reason, and the relay sees nothing', async () => {
    const before = smtp.messages.length;
    const { sendId } = await subscriber('vault-crlf', { email: 'ann@example.com\r\nBcc: victim@evil.example' });
    const outcome = await performSend(deps, sendId);
    expect(outcome).toEqual({ state: 'failed', reason: expect.stringMatching(/^not sent: the address in the vault is not valid \(expected one plain email address local@domain: .*line breaks/) });
    // The reason names the rule, never the address.
    expect(JSON.stringify(outcome)).not.toContain('example.com');
    const row = await db().selectFrom('app.scheduled_sends').select(['state', 'state_reason']).where('id', '=', sendId).executeTakeFirstOrThrow();
    expect(row).toEqual({ state: 'failed', state_reason: (outcome as { reason: string }).reason });
    expect(await performSend(deps, sendId)).toEqual({ state: 'not_scheduled' });
    expect(smtp.messages.length).toBe(before);
  });
});

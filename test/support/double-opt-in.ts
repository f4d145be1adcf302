import { basicAuth, postJson, type TestEngine } from './engine';
import type { ReceivedMessage, TestSmtpServer } from './smtp-server';
import { waitFor } from './wait';

/**
 * A subscriber who signs up with double opt-in and confirms from their mailbox (the one way
 * email_marketing is granted): the sign-up through `POST /v1/consent`, the confirmation email at
 * the real SMTP server, the button's POST. Returns the confirmation email (it holds the preference link).
 */
export async function subscribeWithDoubleOptIn(
  engine: TestEngine,
  smtp: TestSmtpServer,
  who: { readonly userId: string; readonly email: string; readonly messageId?: string },
): Promise<ReceivedMessage> {
  const signup = await postJson(
    `${engine.url}/v1/consent`,
    {
      userId: who.userId,
      email: who.email,
      grant: ['email_marketing'],
      notice: { id: 'newsletter_form', version: 1 },
      method: 'double_opt_in',
      ...(who.messageId ? { messageId: who.messageId } : {}),
    },
    { authorization: basicAuth(engine.writeKey) },
  );
  expect(signup.status).toBe(202);
  const mail = await waitFor(
    async () => smtp.messages.find((m) => m.to.includes(who.email) && m.subject === 'Please confirm your subscription'),
    { what: `the confirmation email to ${who.email}` },
  );
  const token = /confirm\?token=([A-Za-z0-9_.-]+)/.exec(mail.text)?.[1] as string;
  const click = await fetch(`${engine.url}/v1/consent/confirm`, { method: 'POST', body: new URLSearchParams({ token }) });
  expect(click.status).toBe(200);
  return mail;
}

import { findProfileId } from '../../engine/identity/lookup';
import { startTestEngine, type TestEngine } from '../support/engine';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';
import { basicAuth, postJson } from '../support/engine';

const form = { 'content-type': 'application/x-www-form-urlencoded' };

describe('"forget me" from the preference page, confirmed from the mailbox', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    engine = await startTestEngine({ SMTP_URL: smtp.url }, ['events', 'email', 'erasure']);
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });

  it('emails a confirmation link; a GET of it changes nothing; its POST erases the person, with a receipt', async () => {
    const email = 'forget.me@example.net';
    const userId = 'forget-me-user';
    expect((await postJson(`${engine.url}/v1/identify`, { userId, traits: { email } }, { authorization: basicAuth(engine.writeKey) })).status).toBe(200);
    const confirmation = await subscribeWithDoubleOptIn(engine, smtp, { userId, email });
    const prefsUrl = (/http:\/\/\S+\/p\/[A-Za-z0-9_.-]+/.exec(confirmation.text) as RegExpExecArray)[0].replace(/^http:\/\/[^/]+/, engine.url);
    const token = prefsUrl.split('/p/')[1] as string;
    const page = await (await fetch(prefsUrl)).text();
    expect(page).toContain(`action="/p/${token}/forget"`);

    const asked = await fetch(`${prefsUrl}/forget`, { method: 'POST', headers: form, body: '' });
    expect(asked.status).toBe(202);
    const mail = await waitFor(async () => smtp.messages.find((m) => m.to.includes(email) && m.subject === 'Confirm: erase all your data'), { what: 'the forget-me confirmation email' });
    const forgetUrl = (/http:\/\/\S+\/f\/[A-Za-z0-9_.-]+/.exec(mail.text) as RegExpExecArray)[0].replace(/^http:\/\/[^/]+/, engine.url);
    const requests = () => engine.services.databases.db.selectFrom('app.erasure_requests').selectAll().execute();

    // Mail scanners open links: the GET asks, and records nothing.
    const question = await fetch(forgetUrl);
    expect(question.status).toBe(200);
    expect(await question.text()).toContain('Yes, erase my data');
    expect(await requests()).toEqual([]);
    // A tampered link erases nothing.
    expect((await fetch(`${forgetUrl.slice(0, -3)}AAA`, { method: 'POST', headers: form, body: '' })).status).toBe(400);
    // A preference token is not a forget token.
    expect((await fetch(`${engine.url}/f/${token}`, { method: 'POST', headers: form, body: '' })).status).toBe(400);
    expect(await requests()).toEqual([]);

    const confirmed = await fetch(forgetUrl, { method: 'POST', headers: form, body: '' });
    expect(confirmed.status).toBe(202);
    const [request] = await requests();
    expect(await confirmed.text()).toContain(request?.id as string);
    expect(request).toMatchObject({ origin: 'self_service', requested_by: 'self-service link' });
    const done = await waitFor(async () => (await requests()).find((r) => r.state === 'completed'), { what: 'the erasure completed', timeoutMs: 30_000 });
    expect(done.receipt).toMatchObject({ origin: 'self_service', profilesErased: 1, dataKeysDestroyed: 1, verification: { clean: true } });
    expect(await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }, { email }])).toBeUndefined();
    // The links now lead nowhere.
    expect((await fetch(forgetUrl, { method: 'POST', headers: form, body: '' })).status).toBe(410);
    expect((await fetch(prefsUrl)).status).toBe(410);
  }, 90_000);
});

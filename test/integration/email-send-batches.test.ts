import { appendLedger } from '../../engine/consent/ledger';
import { createMailer } from '../../engine/email/mailer';
import { createSender } from '../../engine/email/send-step';
import { blindIndex } from '../../engine/vault/crypto';
import { normalizeEmail } from '../../engine/vault/normalize';
import { tempDir } from '../support/config';
import { startTestEngine, type TestEngine } from '../support/engine';
import { rulesWithoutQuietHours, sendDepsOf, subscriberWithWelcome } from '../support/sends';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';

/**
 * The email worker claims the sends of the jobs it runs at once together (send-step.ts createSender,
 * send-claim.ts). Every guarantee of a send alone holds for each send of a batch: consent and
 * suppression checked for each, each send claimed once, however many jobs or workers ask for it.
 */
describe('sends claimed in batches', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    // No email worker: the test plays the workers, with senders of its own.
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rulesWithoutQuietHours() }, ['events']);
  });
  afterAll(async () => {
    await engine.stop();
    await smtp.close();
  });
  const db = () => engine.services.databases.db;
  const mailer = () => createMailer({ smtpUrl: smtp.url, from: engine.services.config.email.from, outboxDir: tempDir('cf-outbox'), log: engine.services.log });
  const to = (address: string) => smtp.messages.filter((m) => m.to.includes(address));

  it('judges each send of one batch on its own: sent, skipped without consent, skipped when suppressed, not yet due, asked twice', async () => {
    const ok = await subscriberWithWelcome(engine, 'batch-ok', 'batch.ok@example.com');
    const withdrawn = await subscriberWithWelcome(engine, 'batch-withdrawn', 'batch.withdrawn@example.com');
    const suppressed = await subscriberWithWelcome(engine, 'batch-suppressed', 'batch.suppressed@example.com');
    const later = await subscriberWithWelcome(engine, 'batch-later', 'batch.later@example.com');
    await appendLedger(db(), [{ profileId: withdrawn.profileId, purpose: 'email_marketing', decision: 'withdrawn', occurredAt: new Date(), sourceKind: 'write_key', method: 'api' }]);
    await db()
      .insertInto('app.suppressions')
      .values({ hash: blindIndex(engine.services.keys.pseudonym, 'email', normalizeEmail('batch.suppressed@example.com') as string), reason: 'complaint', detail: null })
      .execute();
    await db().updateTable('app.scheduled_sends').set({ due_at: new Date(Date.now() + 3_600_000) }).where('id', '=', later.sendId).execute();

    const m = mailer();
    // A claim that waits long enough for every call below: one batch.
    const send = createSender(sendDepsOf(engine, m), { maxBatch: 10, claimWaitMs: 200 });
    const outcomes = await Promise.all([ok.sendId, withdrawn.sendId, suppressed.sendId, later.sendId, ok.sendId].map((id) => send(id)));
    await m.close();

    expect(outcomes).toEqual([
      { state: 'sent', messageId: `send-${ok.sendId}` },
      { state: 'skipped', reason: expect.stringMatching(/^no consent at send time: refused: email_marketing withdrawn/) },
      { state: 'skipped', reason: 'the address is suppressed (complaint)' },
      { state: 'not_due' },
      { state: 'in_flight' },
    ]);
    expect(to('batch.ok@example.com')).toHaveLength(1);
    expect([...to('batch.withdrawn@example.com'), ...to('batch.suppressed@example.com'), ...to('batch.later@example.com')]).toEqual([]);
    const rows = await db().selectFrom('app.scheduled_sends').select(['id', 'state', 'attempts', 'sent_at', 'message_id']).where('id', 'in', [ok.sendId, withdrawn.sendId, suppressed.sendId, later.sendId]).execute();
    const row = (id: string) => rows.find((r) => r.id === id);
    expect(row(ok.sendId)).toMatchObject({ state: 'sent', attempts: 1, message_id: `send-${ok.sendId}` });
    expect(row(ok.sendId)?.sent_at).toBeInstanceOf(Date);
    expect(row(withdrawn.sendId)).toMatchObject({ state: 'skipped', attempts: 0 });
    expect(row(suppressed.sendId)).toMatchObject({ state: 'skipped', attempts: 1 });
    expect(row(later.sendId)).toMatchObject({ state: 'scheduled', attempts: 0 });
    const skip = await db().selectFrom('app.decisions').select(['outcome', 'allowed']).where('profile_id', '=', withdrawn.profileId).where('outcome', '=', 'send_skipped').execute();
    expect(skip).toEqual([{ outcome: 'send_skipped', allowed: false }]);
  });

  it('sends each of many sends once when two workers ask for all of them at the same time', async () => {
    const people = await Promise.all(Array.from({ length: 12 }, (_, i) => subscriberWithWelcome(engine, `race-${i}`, `race.${i}@example.com`)));
    const mailers = [mailer(), mailer()];
    const senders = mailers.map((m) => createSender(sendDepsOf(engine, m), { maxBatch: 5, finishWaitMs: 5 }));
    const outcomes = await Promise.all(senders.flatMap((send) => people.map((p) => send(p.sendId))));
    await Promise.all(mailers.map((m) => m.close()));

    const sent = outcomes.filter((o) => o.state === 'sent');
    expect(sent).toHaveLength(12);
    expect(new Set(sent.map((o) => (o.state === 'sent' ? o.messageId : ''))).size).toBe(12);
    for (const o of outcomes) expect(['sent', 'in_flight', 'not_scheduled']).toContain(o.state);
    for (let i = 0; i < 12; i++) expect(to(`race.${i}@example.com`)).toHaveLength(1);
    const rows = await db().selectFrom('app.scheduled_sends').select(['state', 'attempts']).where('id', 'in', people.map((p) => p.sendId)).execute();
    expect(rows).toHaveLength(12);
    for (const r of rows) expect(r).toEqual({ state: 'sent', attempts: 1 });
  });
});

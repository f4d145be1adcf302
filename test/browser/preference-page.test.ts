import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { findProfileId } from '../../engine/identity/lookup';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';
import { startTestEngine, type TestEngine } from '../support/engine';
import { rulesWithoutQuietHours } from '../support/sends';
import { startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';
import { waitFor } from '../support/wait';
import { ARTIFACTS_DIR, type KitPage, launchChromium, openKitPage } from './support/browser';

jest.setTimeout(90_000);

/**
 * The preference page as a person reaches it: from the link in a real email the engine sent (the
 * welcome, received by the local SMTP server), in Chromium, without typing a URL. They untick a
 * purpose and press the button; the ledger records the withdrawal, made on the preference page.
 */
describe('preference page in Chromium, from a real email', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  let browser: Browser;
  let kit: KitPage | undefined;

  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    [engine, browser] = await Promise.all([
      startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rulesWithoutQuietHours() }, ['events', 'email', 'journeys']),
      launchChromium(),
    ]);
    fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  });
  afterAll(async () => {
    await kit?.close();
    await browser?.close();
    await engine?.stop();
    await smtp?.close();
  });

  it('unticking a purpose and saving withdraws it: one ledger row, method preference_page', async () => {
    const email = 'pref.reader@example.com';
    await subscribeWithDoubleOptIn(engine, smtp, { userId: 'pref-reader', email });
    // The welcome the engine sends once the subscription is confirmed: its preferences link.
    const welcome = await waitFor(async () => smtp.messages.find((m) => m.to.includes(email) && m.subject.startsWith('Welcome')), {
      what: `the welcome email: ${smtp.messages.map((m) => m.subject).join(' | ')}`,
      timeoutMs: 20_000,
    });
    const link = /(https?:\/\/[^\s"<>]+\/p\/[A-Za-z0-9_.-]+)/.exec(welcome.text)?.[1];
    expect(link).toBeDefined();
    // The email names PUBLIC_URL; the engine under test listens on a free port.
    const url = (link as string).replace(/^https?:\/\/[^/]+/, engine.url);

    const db = engine.services.databases.db;
    const profileId = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'pref-reader' }])) as string;
    const ledger = () =>
      db.selectFrom('app.consent_ledger').select(['purpose', 'decision', 'method', 'source_kind', 'notice_id']).where('profile_id', '=', profileId).orderBy('id').execute();
    const before = await ledger();
    expect(before.filter((r) => r.purpose === 'email_marketing').map((r) => r.decision)).toEqual(['granted']);

    kit = await openKitPage(browser);
    const { page } = kit;
    const response = await page.goto(url);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toContain('Your privacy choices');
    const box = page.getByRole('checkbox', { name: /email/i }).first();
    await expect(box.isChecked()).resolves.toBe(true);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'preference-page-before.png'), fullPage: true });

    await box.uncheck();
    await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Save my choices' }).click()]);
    await expect(page.getByRole('status').textContent()).resolves.toContain('Your choices are saved.');
    await expect(page.getByRole('checkbox', { name: /email/i }).first().isChecked()).resolves.toBe(false);
    await page.screenshot({ path: path.join(ARTIFACTS_DIR, 'preference-page-saved.png'), fullPage: true });

    const after = await ledger();
    const added = after.slice(before.length);
    expect(added).toEqual([{ purpose: 'email_marketing', decision: 'withdrawn', method: 'preference_page', source_kind: 'preference_page', notice_id: 'preference_page' }]);
    expect(fs.statSync(path.join(ARTIFACTS_DIR, 'preference-page-saved.png')).size).toBeGreaterThan(1_000);
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { findProfileId } from '../../engine/identity/lookup';
import { subscribeWithDoubleOptIn } from '../support/double-opt-in';
import { rulesWithoutQuietHours } from '../support/sends';
import { ARTIFACTS_DIR, type KitPage, openKitPage } from './support/browser';
import { linkIn, type MailEngine, startMailEngine, waitForMail } from './support/mail-engine';

jest.setTimeout(90_000);

/**
 * The preference page as a person reaches it: from the link in a real email the engine sent (the
 * welcome, received by the local SMTP server), in Chromium, without typing a URL. They untick a
 * purpose and press the button; the ledger records the withdrawal, made on the preference page.
 */
describe('preference page in Chromium, from a real email', () => {
  let harness: MailEngine;
  let kit: KitPage | undefined;

  beforeAll(async () => {
    harness = await startMailEngine({ env: { RULES_DIR: rulesWithoutQuietHours() }, queues: ['events', 'email', 'journeys'] });
  });
  afterAll(async () => {
    await kit?.close();
    await harness?.close();
  });

  it('unticking a purpose and saving withdraws it: one ledger row, method preference_page', async () => {
    const { engine, smtp, browser } = harness;
    const email = 'pref.reader@example.com';
    await subscribeWithDoubleOptIn(engine, smtp, { userId: 'pref-reader', email });
    // The welcome the engine sends once the subscription is confirmed: its preferences link, which
    // names PUBLIC_URL, the engine's own address.
    const url = linkIn(await waitForMail(smtp, email, 'Welcome'), 'preferences');
    expect(url.startsWith(`${engine.url}/p/`)).toBe(true);

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

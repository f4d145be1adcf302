import fs from 'node:fs';
import path from 'node:path';
import { reactToConsent } from '../../engine/automation/react-to-consent';
import { appendLedger } from '../../engine/consent/ledger';
import type { Mailer } from '../../engine/email/mailer';
import type { SendDeps } from '../../engine/email/send-step';
import { processEventBatch } from '../../engine/events/process-batch';
import { findProfileId } from '../../engine/identity/lookup';
import { batchDeps } from '../../engine/runtime/batch';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { tempDir } from './config';
import type { TestEngine } from './engine';
import { SHIPPED_RULES_DIR } from './rules';

/** The shipped rules, with the welcome series' quiet hours off so "welcome now" does not depend on the hour of the test. */
export function rulesWithoutQuietHours(): string {
  const dir = tempDir('cf-rules');
  fs.cpSync(SHIPPED_RULES_DIR, dir, { recursive: true });
  const file = path.join(dir, 'campaigns', 'welcome_series.yaml');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/\n\s+quiet_hours:\n(\s+\w+: .*\n)+/, '\n'));
  return dir;
}

/**
 * The shipped rules, with the welcome series' quiet hours moved to cover the hour of the test (UTC,
 * from an hour before now to `until`, three hours after): the welcome is always deferred, so a test
 * can act on it before an email worker running beside it sends it, whatever the time of day.
 */
export function rulesWithQuietHoursNow(now = new Date()): { dir: string; until: string } {
  const dir = tempDir('cf-rules');
  fs.cpSync(SHIPPED_RULES_DIR, dir, { recursive: true });
  const hhmm = (d: Date) => d.toISOString().slice(11, 16);
  const until = hhmm(new Date(now.getTime() + 3 * 3_600_000));
  const file = path.join(dir, 'campaigns', 'welcome_series.yaml');
  const quiet = `\n  quiet_hours:\n    from: "${hhmm(new Date(now.getTime() - 3_600_000))}"\n    to: "${until}"\n    timezone: UTC\n`;
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/\n\s+quiet_hours:\n(\s+\w+: .*\n)+/, quiet));
  return { dir, until };
}

/**
 * A subscriber whose welcome is scheduled now (consent set up directly: double opt-in has its own
 * test). The send's job is in app.outbox, not yet relayed: tests drive the send themselves, or relay.
 */
export async function subscriberWithWelcome(engine: TestEngine, userId: string, email: string): Promise<{ profileId: string; sendId: string }> {
  return subscriberWithTraits(engine, userId, { email, firstName: 'Kim' });
}

/** The same, with any traits: stored as an import would store them, past the API's checks. */
export async function subscriberWithTraits(engine: TestEngine, userId: string, traits: Record<string, unknown>): Promise<{ profileId: string; sendId: string }> {
  const db = engine.services.databases.db;
  const now = new Date().toISOString();
  const identify: AcceptedEvent = {
    sourceId: engine.sourceId,
    messageId: `${userId}-identify`,
    receivedAt: now,
    occurredAt: now,
    signals: { gpc: false, dnt: false },
    event: { type: 'identify', userId, traits } as SegmentEvent,
  };
  await processEventBatch(batchDeps(engine.services), [identify]);
  const profileId = (await findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId }])) as string;
  await db.transaction().execute(async (trx) => {
    await appendLedger(trx, [{ profileId, purpose: 'email_marketing', decision: 'granted', occurredAt: new Date(), sourceKind: 'admin', method: 'admin' }]);
    await reactToConsent(trx, { compiled: engine.services.rules.compiled, catalog: engine.services.rules.purposes }, profileId);
  });
  const send = await db.selectFrom('app.scheduled_sends').select('id').where('profile_id', '=', profileId).where('template', '=', 'welcome').executeTakeFirstOrThrow();
  return { profileId, sendId: send.id };
}

/** What performSend needs, from a test engine's services: the send is driven by the test, at the time it chooses. */
export function sendDepsOf(engine: TestEngine, mailer: Mailer, extra: Partial<SendDeps> = {}): SendDeps {
  return {
    config: engine.services.config,
    keys: engine.services.keys,
    databases: engine.services.databases,
    compiled: engine.services.rules.compiled,
    templates: engine.services.rules.templates,
    mailer,
    traitNames: engine.services.rules.ruleSet.traitNames,
    ...extra,
  };
}

import fs from 'node:fs';
import path from 'node:path';
import { runDueAutomation } from '../../engine/automation/run-automation';
import { appendLedger } from '../../engine/consent/ledger';
import { createMailer, type Mailer } from '../../engine/email/mailer';
import { performSend, type SendDeps } from '../../engine/email/send-step';
import { processEventBatch } from '../../engine/events/process-batch';
import { createApiKey } from '../../engine/auth/api-keys';
import { batchDeps } from '../../engine/runtime/batch';
import { CampaignReport } from '../../schemas/campaign-report';
import type { AcceptedEvent, SegmentEvent } from '../../schemas/segment';
import { main } from '../../workers/cli/main';
import { tempDir, testEnv } from '../support/config';
import { startTestEngine, type TestEngine } from '../support/engine';
import { rulesWithoutQuietHours, sendDepsOf, subscriberWithWelcome } from '../support/sends';
import { type ReceivedMessage, startTestSmtpServer, type TestSmtpServer } from '../support/smtp-server';

/**
 * The campaign report against a scenario played through the real engine: the welcome series (its
 * quiet hours off, an exit on "Order Completed" added), seven subscribers whose welcome is sent and
 * opened and clicked, sent and unsubscribed, skipped for a withdrawal, bounced, sent then converted,
 * converted before it went out (cancelled), and left pending; two days later the next step comes up
 * for those still on the journey, and a frequency cap skips it. The report's numbers must equal the
 * rows the engine recorded, counted here independently, through HTTP and through the command.
 */

const CAMPAIGN = 'welcome_series';
const WELCOME_STEP = 'steps.0';

const to = (messages: readonly ReceivedMessage[], address: string) => messages.filter((m) => m.to.includes(address));
const decodeQp = (raw: string) => raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));

function rulesWithExit(): string {
  const dir = rulesWithoutQuietHours();
  const file = path.join(dir, 'campaigns', `${CAMPAIGN}.yaml`);
  // And a frequency cap: the second email, two days after the welcome, is skipped when it comes up.
  const limits = '\nexit:\n  event:\n    name: Order Completed\n\nlimits:\n  frequency_cap:\n    max: 1\n    per: 3d\n';
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/\nlimits:\n/, limits));
  return dir;
}

/** Runs `consentflow ARGS` in this process (the sources, not dist/), returning its exit code and stdout. */
async function cli(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  try {
    const code = await main(args, env);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

describe('campaign report: GET /admin/v1/campaigns/:id/stats and `consentflow report campaign`', () => {
  let engine: TestEngine;
  let smtp: TestSmtpServer;
  let mailer: Mailer;
  let deps: SendDeps;
  let rulesDir: string;
  let marketerKey: string;
  let operatorKey: string;
  const db = () => engine.services.databases.db;

  const orderCompleted = async (userId: string) => {
    const now = new Date().toISOString();
    const event: AcceptedEvent = {
      sourceId: engine.sourceId,
      messageId: `${userId}-order`,
      receivedAt: now,
      occurredAt: now,
      signals: { gpc: false, dnt: false },
      event: { type: 'track', userId, event: 'Order Completed', properties: {} } as SegmentEvent,
    };
    await processEventBatch(batchDeps(engine.services), [event]);
  };

  beforeAll(async () => {
    smtp = await startTestSmtpServer();
    rulesDir = rulesWithExit();
    // No email worker: the test drives each send itself.
    engine = await startTestEngine({ SMTP_URL: smtp.url, RULES_DIR: rulesDir }, ['events']);
    mailer = createMailer({ smtpUrl: smtp.url, from: engine.services.config.email.from, outboxDir: tempDir('cf-outbox'), log: engine.services.log });
    deps = sendDepsOf(engine, mailer);
    marketerKey = (await createApiKey(db(), { role: 'marketer', name: 'report reader' })).key;
    operatorKey = (await createApiKey(db(), { role: 'operator', name: 'not a marketer' })).key;

    // Sent, opened and clicked (tracking needs analytics consent, given before the send).
    const opener = await subscriberWithWelcome(engine, 'opener', 'opener@example.com');
    await appendLedger(db(), [{ profileId: opener.profileId, purpose: 'analytics', decision: 'granted', occurredAt: new Date(), sourceKind: 'admin', method: 'admin' }]);
    expect(await performSend(deps, opener.sendId)).toMatchObject({ state: 'sent' });
    const html = decodeQp(to(smtp.messages, 'opener@example.com')[0]?.raw ?? '');
    const click = /href="http:\/\/[^"]+(\/c\/[A-Za-z0-9_.-]+)"/.exec(html)?.[1] as string;
    const open = /src="http:\/\/[^"]+(\/o\/[A-Za-z0-9_.-]+\.gif)"/.exec(html)?.[1] as string;
    expect([click, open]).toEqual([expect.any(String), expect.any(String)]);
    // Opened twice, clicked once: the report counts messages, not pixel loads.
    await (await fetch(`${engine.url}${open}`)).arrayBuffer();
    await (await fetch(`${engine.url}${open}`)).arrayBuffer();
    expect((await fetch(`${engine.url}${click}`, { redirect: 'manual' })).status).toBe(302);

    // Sent, then one-click unsubscribe (RFC 8058) from the message's own header.
    const leaver = await subscriberWithWelcome(engine, 'leaver', 'leaver@example.com');
    expect(await performSend(deps, leaver.sendId)).toMatchObject({ state: 'sent' });
    const header = to(smtp.messages, 'leaver@example.com')[0]?.header('list-unsubscribe') as string;
    const unsubscribe = (/<(http[^>]+\/u\/[^>]+)>/.exec(header)?.[1] as string).replace(/^http:\/\/[^/]+/, engine.url);
    const unsubscribed = await fetch(unsubscribe, { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(unsubscribed.status).toBe(200);

    // Withdrawn after scheduling: skipped at send time, for want of consent.
    const withdrawn = await subscriberWithWelcome(engine, 'withdrawn', 'withdrawn@example.com');
    await appendLedger(db(), [{ profileId: withdrawn.profileId, purpose: 'email_marketing', decision: 'withdrawn', occurredAt: new Date(), sourceKind: 'write_key', method: 'api' }]);
    expect(await performSend(deps, withdrawn.sendId)).toMatchObject({ state: 'skipped', reason: expect.stringMatching(/^no consent at send time/) });

    // A hard bounce (550 5.1.1).
    const bouncer = await subscriberWithWelcome(engine, 'bouncer', 'bouncer@example.com');
    smtp.setRejection({ code: 550, message: '5.1.1 Recipient address rejected: no such user' });
    expect(await performSend(deps, bouncer.sendId)).toMatchObject({ state: 'failed' });
    smtp.setRejection(undefined);

    // Sent, then bought: the exit goal.
    const buyer = await subscriberWithWelcome(engine, 'buyer', 'buyer@example.com');
    expect(await performSend(deps, buyer.sendId)).toMatchObject({ state: 'sent' });
    await orderCompleted('buyer');

    // Bought before the welcome went out: a conversion, and the scheduled welcome cancelled.
    await subscriberWithWelcome(engine, 'early-buyer', 'early.buyer@example.com');
    await orderCompleted('early-buyer');

    // Scheduled, not yet due for the test (nobody sends it): pending.
    await subscriberWithWelcome(engine, 'waiting', 'waiting@example.com');
  });
  afterAll(async () => {
    await mailer.close();
    await engine.stop();
    await smtp.close();
  });

  /** The rows, counted here on their own terms: one query a table, no code of the report's. */
  async function recorded() {
    const sends = await db().selectFrom('app.scheduled_sends').select(['id', 'state', 'state_reason', 'step_id']).where('campaign_id', '=', CAMPAIGN).execute();
    const welcome = sends.filter((s) => s.step_id === WELCOME_STEP);
    const sendIds = new Set(welcome.map((s) => s.id));
    const events = await db().selectFrom('app.events').select(['name', 'properties']).where('name', 'in', ['Email Opened', 'Email Clicked']).execute();
    const distinctSends = (name: string) => new Set(events.filter((e) => e.name === name && sendIds.has(String(e.properties.send_id))).map((e) => e.properties.send_id)).size;
    const ledger = await db().selectFrom('app.consent_ledger').select(['source_ref']).where('decision', '=', 'withdrawn').where('method', '=', 'email_link').execute();
    const unsubscribedSends = new Set(ledger.map((l) => /of send (\S+)$/.exec(l.source_ref ?? '')?.[1]).filter((id) => id !== undefined && sendIds.has(id)));
    const enrolments = await db().selectFrom('app.enrolments').select(['state', 'finish_reason', 'profile_id']).where('campaign_id', '=', CAMPAIGN).execute();
    const stateCount = (state: string) => welcome.filter((s) => s.state === state).length;
    return {
      enrolled: enrolments.length,
      people: new Set(enrolments.map((e) => e.profile_id)).size,
      exited: enrolments.filter((e) => e.state === 'exited').length,
      conversions: enrolments.filter((e) => e.state === 'exited' && (e.finish_reason ?? '').startsWith('exit event')).length,
      welcome: {
        scheduled: welcome.length,
        pending: stateCount('scheduled') + stateCount('sending'),
        sent: stateCount('sent'),
        skipped: stateCount('skipped'),
        skippedNoConsent: welcome.filter((s) => s.state === 'skipped' && (s.state_reason ?? '').startsWith('no consent')).length,
        cancelled: stateCount('cancelled'),
        bounced: welcome.filter((s) => s.state === 'failed' && (s.state_reason ?? '').startsWith('refused by the relay')).length,
        opened: distinctSends('Email Opened'),
        clicked: distinctSends('Email Clicked'),
        unsubscribed: unsubscribedSends.size,
      },
    };
  }

  function expectMatches(report: CampaignReport, rows: Awaited<ReturnType<typeof recorded>>): void {
    expect(report.enrolments).toMatchObject({ total: rows.enrolled, people: rows.people, exited: rows.exited });
    const step = report.steps.find((s) => s.step === WELCOME_STEP);
    expect(step).toEqual({
      step: WELCOME_STEP,
      template: 'welcome',
      inRuleSet: true,
      scheduled: rows.welcome.scheduled,
      pending: rows.welcome.pending,
      sent: rows.welcome.sent,
      skipped: rows.welcome.skipped,
      skippedByReason: { no_consent: rows.welcome.skippedNoConsent },
      cancelled: rows.welcome.cancelled,
      bounced: rows.welcome.bounced,
      failed: 0,
      opened: rows.welcome.opened,
      clicked: rows.welcome.clicked,
      unsubscribed: rows.welcome.unsubscribed,
    });
    expect(report.goal).toEqual({ kind: 'event', description: 'Order Completed', conversions: rows.conversions, rate: rows.conversions / rows.enrolled });
  }

  it('answers the marketer with the counts the engine recorded, step by step, and the exit goal', async () => {
    const rows = await recorded();
    // The scenario as played: what the counts must come to.
    expect(rows).toEqual({
      enrolled: 7,
      people: 7,
      exited: 3,
      conversions: 2,
      welcome: { scheduled: 7, pending: 1, sent: 3, skipped: 1, skippedNoConsent: 1, cancelled: 1, bounced: 1, opened: 1, clicked: 1, unsubscribed: 1 },
    });
    const res = await fetch(`${engine.url}/admin/v1/campaigns/${CAMPAIGN}/stats`, { headers: { authorization: `Bearer ${marketerKey}` } });
    expect(res.status).toBe(200);
    const report = CampaignReport.parse(await res.json());
    expectMatches(report, rows);
    expect(report.campaign).toMatchObject({ id: CAMPAIGN, name: 'Welcome series', inRuleSet: true });
    // The steps the send never reached are still listed, at zero.
    expect(report.steps.map((s) => s.step)).toEqual([WELCOME_STEP, 'steps.2.then.0', 'steps.2.else.0']);
    expect(report.steps.slice(1).every((s) => s.scheduled === 0 && s.sent === 0)).toBe(true);
  });

  it('holds nothing that names or singles out a person', async () => {
    const text = await (await fetch(`${engine.url}/admin/v1/campaigns/${CAMPAIGN}/stats`, { headers: { authorization: `Bearer ${marketerKey}` } })).text();
    const ids = await db().selectFrom('app.scheduled_sends').select(['id', 'profile_id', 'enrolment_id']).where('campaign_id', '=', CAMPAIGN).execute();
    for (const r of ids) for (const id of [r.id, r.profile_id, r.enrolment_id]) expect(text).not.toContain(id);
    expect(text).not.toContain('@example.com');
    // One time in it: when it was made, never when someone did something.
    expect(text.match(/\d{4}-\d{2}-\d{2}T/g)).toHaveLength(1);
  });

  it('is 404 for an unknown campaign (naming the running ones), 400 for a malformed id, 403 for another role', async () => {
    const get = (id: string, key = marketerKey) => fetch(`${engine.url}/admin/v1/campaigns/${id}/stats`, { headers: { authorization: `Bearer ${key}` } });
    const unknown = await get('no_such_campaign');
    expect(unknown.status).toBe(404);
    const body = (await unknown.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('NOT_FOUND');
    expect(body.error.message).toContain(CAMPAIGN);
    const malformed = await get('Bad%20Id!');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toMatch(/lower-case letters, digits/);
    expect((await get(CAMPAIGN, operatorKey)).status).toBe(403);
  });

  it('`consentflow report campaign ID --json` prints the same numbers; the text form, and its errors', async () => {
    const env = testEnv({ DATABASE_URL: engine.database.url, RULES_DIR: rulesDir });
    const json = await cli(['report', 'campaign', CAMPAIGN, '--json'], env);
    expect([json.code, json.stderr]).toEqual([0, '']);
    expectMatches(CampaignReport.parse(JSON.parse(json.stdout)), await recorded());

    const text = await cli(['report', 'campaign', CAMPAIGN], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('Enrolled: 7 (7 people)');
    expect(text.stdout).toMatch(/steps\.0\s+welcome\s+7\s+1\s+3\s+1\s+1\s+1\s+0\s+1\s+1\s+1\n/);
    expect(text.stdout).toContain('steps.0 skipped: no_consent 1');
    expect(text.stdout).toContain('Goal (exit event: Order Completed): 2 conversions, 28.6% of enrolments');

    const unknown = await cli(['report', 'campaign', 'no_such_campaign'], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^consentflow: no campaign no_such_campaign: .*welcome_series/);
    const malformed = await cli(['report', 'campaign', 'Bad Id'], env);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/^consentflow: campaign 'Bad Id': expected an id/);
  });

  it('counts a send step skipped when it came up (no send written: the decision), by reason', async () => {
    const later = new Date(Date.now() + 2 * 24 * 3_600_000 + 60_000);
    await db().transaction().execute((trx) => runDueAutomation(trx, { compiled: engine.services.rules.compiled, catalog: engine.services.rules.purposes }, later));
    const decisions = await db()
      .selectFrom('app.decisions')
      .select(['ref', 'reason'])
      .where('rule_id', '=', CAMPAIGN)
      .where('outcome', '=', 'step_skipped')
      .execute();
    const capped = decisions.filter((d) => d.ref.step === 'steps.2.else.0' && d.reason.startsWith('frequency cap'));
    expect(capped.length).toBeGreaterThan(0);
    const res = await fetch(`${engine.url}/admin/v1/campaigns/${CAMPAIGN}/stats`, { headers: { authorization: `Bearer ${marketerKey}` } });
    const report = CampaignReport.parse(await res.json());
    const step = report.steps.find((s) => s.step === 'steps.2.else.0');
    const written = await db().selectFrom('app.scheduled_sends').select('state').where('campaign_id', '=', CAMPAIGN).where('step_id', '=', 'steps.2.else.0').execute();
    expect(step).toMatchObject({ scheduled: written.length, skipped: capped.length + written.filter((w) => w.state === 'skipped').length, skippedByReason: { frequency_cap: capped.length } });
    // The welcome step's numbers did not move.
    expectMatches(report, await recorded());
  });
});

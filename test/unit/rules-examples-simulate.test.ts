import fs from 'node:fs';
import path from 'node:path';
import { loadRuleSet } from '../../engine/rules/load';
import type { RuleSet } from '../../engine/rules/rule-set';
import { parseSimEvents, simulate, type Timeline } from '../../engine/rules/simulate';
import { main } from '../../workers/cli/main';

/**
 * The example rules shipped in rules/ replayed against the prepared event logs in
 * test/fixtures/simulate/: the timeline each example campaign should produce.
 */

const RULES = path.resolve(__dirname, '../../rules');
const FIXTURES = path.resolve(__dirname, '../fixtures/simulate');

let ruleSet: RuleSet;
beforeAll(() => {
  const loaded = loadRuleSet(RULES);
  if (!loaded.ok) throw new Error(loaded.problems.map((p) => `${p.file}:${p.line}:${p.column} ${p.message}`).join('\n'));
  ruleSet = loaded.ruleSet;
});

function replay(fixture: string, options: { from?: string; until?: string }): Timeline {
  const file = path.join(FIXTURES, `${fixture}.jsonl`);
  const parsed = parseSimEvents(fs.readFileSync(file, 'utf8'), file, ruleSet.purposes);
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return simulate(ruleSet, parsed.events, {
    ...(options.from ? { from: new Date(options.from) } : {}),
    ...(options.until ? { until: new Date(options.until) } : {}),
  });
}

/** `time person kind campaign/segment [step] [template] — reason`, only for the campaigns and segments named. */
function lines(timeline: Timeline, only?: readonly string[]): string[] {
  return timeline.entries
    .filter((e) => only === undefined || only.includes(e.campaign ?? '') || only.includes(e.segment ?? ''))
    .map((e) => {
      const subject = [e.campaign, e.segment].filter((x) => x !== undefined).join('/');
      return `${[e.at.toISOString(), e.person, e.kind, subject, e.step, e.template].filter((x) => x !== undefined).join(' ')} — ${e.reason}`;
    });
}

describe('the example campaigns, simulated', () => {
  it('welcome_series: welcome at once or after quiet hours in the person’s zone, then tips or a guide by engagement', () => {
    const timeline = replay('welcome_series', { until: '2026-03-06T00:00:00Z' });
    expect(lines(timeline).filter((l) => !l.includes(' carl '))).toEqual([
      '2026-03-02T21:30:00.000Z anna segment_entered newsletter_subscribers — consent email_marketing: allowed: email_marketing granted by double_opt_in on 2026-03-02T21:30:00.000Z',
      '2026-03-02T21:30:00.000Z anna segment_entered vip — plan in ["pro","team"]',
      '2026-03-02T21:30:00.000Z anna enrolled welcome_series — entered segment newsletter_subscribers',
      // 22:30 in Warsaw (the campaign's zone, anna has none): to 08:00 Warsaw time.
      '2026-03-02T21:30:00.000Z anna deferred welcome_series steps.0 welcome — quiet hours 21:00–08:00 Europe/Warsaw: deferred to 2026-03-03T07:00:00.000Z',
      '2026-03-03T02:00:00.000Z ben segment_entered newsletter_subscribers — consent email_marketing: allowed: email_marketing granted by double_opt_in on 2026-03-03T02:00:00.000Z',
      '2026-03-03T02:00:00.000Z ben enrolled welcome_series — entered segment newsletter_subscribers',
      // 21:00 in New York (ben's timezone trait): to 08:00 New York time.
      '2026-03-03T02:00:00.000Z ben deferred welcome_series steps.0 welcome — quiet hours 21:00–08:00 America/New_York: deferred to 2026-03-03T13:00:00.000Z',
      '2026-03-03T07:00:00.000Z anna send welcome_series steps.0 welcome — due 2026-03-02T21:30:00.000Z, quiet hours 21:00–08:00 Europe/Warsaw: deferred to 2026-03-03T07:00:00.000Z',
      '2026-03-03T13:00:00.000Z ben send welcome_series steps.0 welcome — due 2026-03-03T02:00:00.000Z, quiet hours 21:00–08:00 America/New_York: deferred to 2026-03-03T13:00:00.000Z',
      '2026-03-05T06:00:00.000Z anna segment_entered engaged_readers — consent profiling: allowed: profiling granted by banner on 2026-03-02T21:30:00.000Z and Article Read: 3 of at least 3 within 14d',
      // Two days after the welcome went out.
      '2026-03-05T07:00:00.000Z anna send welcome_series steps.2.then.0 tips — sent',
      '2026-03-05T07:00:00.000Z anna completed welcome_series — all steps done',
      '2026-03-05T13:00:00.000Z ben send welcome_series steps.2.else.0 getting_started — sent',
      '2026-03-05T13:00:00.000Z ben completed welcome_series — all steps done',
    ]);
    // carl refused profiling: the subscriber list is consent alone, not a profile, so he gets the
    // series; engaged_readers is profiling, so he gets the guide, not the tips.
    expect(timeline.people).toEqual(['anna', 'ben', 'carl']);
    expect(lines(timeline).filter((l) => l.includes(' carl '))).toEqual([
      '2026-03-03T09:00:00.000Z carl segment_entered newsletter_subscribers — consent email_marketing: allowed: email_marketing granted by double_opt_in on 2026-03-03T09:00:00.000Z',
      '2026-03-03T09:00:00.000Z carl enrolled welcome_series — entered segment newsletter_subscribers',
      '2026-03-03T09:00:00.000Z carl send welcome_series steps.0 welcome — sent',
      '2026-03-05T09:00:00.000Z carl send welcome_series steps.2.else.0 getting_started — sent',
      '2026-03-05T09:00:00.000Z carl completed welcome_series — all steps done',
    ]);
  });

  it('abandoned_cart: a reminder after an hour (deferred by quiet hours), a last call, and cancellation on purchase', () => {
    const timeline = replay('abandoned_cart', { until: '2026-03-07T00:00:00Z' });
    expect(lines(timeline, ['abandoned_cart'])).toEqual([
      // The 15 PLN product does not trigger (price gte 20); the 120 PLN one does.
      '2026-03-04T10:05:00.000Z emil enrolled abandoned_cart — event Product Added',
      '2026-03-04T10:40:00.000Z emil exited abandoned_cart — exit event Order Completed; cancelled wait until 2026-03-04T11:05:00.000Z',
      '2026-03-04T12:00:00.000Z fay enrolled abandoned_cart — event Product Added',
      '2026-03-04T12:00:00.000Z gus skipped abandoned_cart — no consent for profiling: refused: profiling never granted',
      '2026-03-04T13:00:00.000Z fay send abandoned_cart first_reminder cart_reminder — sent',
      '2026-03-04T13:00:00.000Z fay segment_entered abandoned_cart/cart_abandoners_contacted steps.2 — added by step steps.2 of abandoned_cart',
      '2026-03-04T14:00:00.000Z fay exited abandoned_cart — exit event Order Completed; cancelled wait for Checkout Started until 2026-03-05T13:00:00.000Z',
      '2026-03-04T19:30:00.000Z dora enrolled abandoned_cart — event Product Added',
      // An hour later it is 21:30 in Warsaw.
      '2026-03-04T20:30:00.000Z dora deferred abandoned_cart first_reminder cart_reminder — quiet hours 21:00–08:00 Europe/Warsaw: deferred to 2026-03-05T07:00:00.000Z',
      '2026-03-05T07:00:00.000Z dora send abandoned_cart first_reminder cart_reminder — due 2026-03-04T20:30:00.000Z, quiet hours 21:00–08:00 Europe/Warsaw: deferred to 2026-03-05T07:00:00.000Z',
      '2026-03-05T07:00:00.000Z dora segment_entered abandoned_cart/cart_abandoners_contacted steps.2 — added by step steps.2 of abandoned_cart',
      // No Checkout Started within a day: on_timeout continue.
      '2026-03-06T07:00:00.000Z dora send abandoned_cart steps.4 cart_last_call — sent',
      '2026-03-06T07:00:00.000Z dora completed abandoned_cart — all steps done',
    ]);
  });

  it('reengagement: dormant readers get a "we miss you", are marked when they come back, and leave when they unsubscribe', () => {
    const timeline = replay('reengagement', { until: '2026-03-01T00:00:00Z' });
    expect(lines(timeline, ['reengagement', 'dormant_readers'])).toEqual([
      '2026-02-04T10:05:00.000Z greta segment_entered dormant_readers — Article Read: 0 of at most 0 within 30d and last seen 2026-01-05T10:05:00.000Z, before 30d and in segment newsletter_subscribers',
      '2026-02-04T10:05:00.000Z greta enrolled reengagement — entered segment dormant_readers',
      '2026-02-04T10:05:00.000Z greta send reengagement steps.0 we_miss_you — sent',
      '2026-02-04T10:10:00.000Z hugo segment_entered dormant_readers — Article Read: 0 of at most 0 within 30d and last seen 2026-01-05T10:10:00.000Z, before 30d and in segment newsletter_subscribers',
      '2026-02-04T10:10:00.000Z hugo enrolled reengagement — entered segment dormant_readers',
      '2026-02-04T10:10:00.000Z hugo send reengagement steps.0 we_miss_you — sent',
      '2026-02-04T10:15:00.000Z ivo segment_entered dormant_readers — Article Read: 0 of at most 0 within 30d and last seen 2026-01-05T10:15:00.000Z, before 30d and in segment newsletter_subscribers',
      '2026-02-04T10:15:00.000Z ivo enrolled reengagement — entered segment dormant_readers',
      '2026-02-04T10:15:00.000Z ivo send reengagement steps.0 we_miss_you — sent',
      '2026-02-06T09:00:00.000Z greta segment_left dormant_readers — Article Read: 1 of at most 0 within 30d',
      '2026-02-06T09:00:00.000Z greta trait_set reengagement steps.2 — reengaged = true',
      '2026-02-06T09:00:00.000Z greta completed reengagement — all steps done',
      '2026-02-07T12:00:00.000Z ivo segment_left dormant_readers — last seen 2026-02-07T12:00:00.000Z, expected before 30d',
      '2026-02-07T12:00:00.000Z ivo exited reengagement — exit condition: not in segment newsletter_subscribers; cancelled wait for Article Read until 2026-02-11T10:15:00.000Z',
      '2026-02-11T10:10:00.000Z hugo exited reengagement — no Article Read within 7d',
    ]);
  });

  it('weekly_digest: every Monday at 09:00 Warsaw time to the subscribers of that moment, across the change to summer time', () => {
    const timeline = replay('weekly_digest', { from: '2026-03-01T00:00:00Z', until: '2026-03-31T00:00:00Z' });
    const digest = (person: string, at: string) => [
      `${at} ${person} enrolled weekly_digest — broadcast to segment newsletter_subscribers`,
      `${at} ${person} send weekly_digest steps.0 weekly_digest — sent`,
      `${at} ${person} completed weekly_digest — all steps done`,
    ];
    expect(lines(timeline, ['weekly_digest', 'newsletter_subscribers']).filter((l) => !l.includes(' jonas '))).toEqual([
      '2026-03-01T10:00:00.000Z ida segment_entered newsletter_subscribers — consent email_marketing: allowed: email_marketing granted by double_opt_in on 2026-03-01T10:00:00.000Z',
      '2026-03-01T10:00:00.000Z kai segment_entered newsletter_subscribers — consent email_marketing: allowed: email_marketing granted by double_opt_in on 2026-03-01T10:00:00.000Z',
      ...digest('ida', '2026-03-02T08:00:00.000Z'),
      ...digest('kai', '2026-03-02T08:00:00.000Z'),
      ...digest('ida', '2026-03-09T08:00:00.000Z'),
      ...digest('kai', '2026-03-09T08:00:00.000Z'),
      '2026-03-10T18:00:00.000Z ida segment_left newsletter_subscribers — consent email_marketing: refused: email_marketing withdrawn by banner on 2026-03-10T18:00:00.000Z',
      ...digest('kai', '2026-03-16T08:00:00.000Z'),
      ...digest('kai', '2026-03-23T08:00:00.000Z'),
      // Warsaw is on summer time (UTC+2) from 29 March.
      ...digest('kai', '2026-03-30T07:00:00.000Z'),
    ]);
    // jonas gave email_marketing but not profiling: the subscriber list needs no more, so he gets the digest.
    expect(lines(timeline, ['weekly_digest']).filter((l) => l.includes(' jonas ') && l.includes(' send '))).toHaveLength(5);
  });
});

describe('consentflow rules simulate', () => {
  async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    try {
      const code = await main(['rules', 'simulate', ...args], { LOG_LEVEL: 'silent', RULES_DIR: RULES });
      return { code, stdout, stderr };
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  }

  it('prints the timeline per person, or as JSON', async () => {
    const events = path.join(FIXTURES, 'abandoned_cart.jsonl');
    const text = await cli(['--events', events, '--until', '2026-03-04T11:00:00Z']);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toContain('\nemil\n');
    expect(text.stdout).toContain(
      '  2026-03-04T10:40:00Z  exited           abandoned_cart  — exit event Order Completed; cancelled wait until 2026-03-04T11:05:00.000Z\n',
    );
    const json = await cli(['--events', events, '--rules', RULES, '--until', '2026-03-04T11:00:00Z', '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { version: string; people: string[]; entries: Array<{ at: string; person: string; kind: string; campaign?: string }> };
    expect(parsed.version).toBe(ruleSet.version);
    expect(parsed.people).toEqual(['dora', 'emil', 'fay', 'gus']);
    expect(parsed.entries).toContainEqual(expect.objectContaining({ at: '2026-03-04T10:05:00.000Z', person: 'emil', kind: 'enrolled', campaign: 'abandoned_cart' }));
  });

  it('refuses a bad line with FILE:LINE: message and exit 1', async () => {
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'cf-sim-'));
    const file = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(file, `${fs.readFileSync(path.join(FIXTURES, 'weekly_digest.jsonl'), 'utf8')}{"type":"track","userId":"x","timestamp":"2026-03-01T10:00:00Z"}\n`);
    try {
      const result = await cli(['--events', file]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`${path.relative(process.cwd(), file).startsWith('..') ? file : path.relative(process.cwd(), file)}:5: event: expected an event name (a string)\n`);
      expect((await cli(['--events', file, '--from', 'monday'])).stderr).toContain("--from 'monday': expected an ISO 8601 date-time");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

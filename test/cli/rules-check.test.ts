import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { loadRuleSet } from '../../engine/rules/load';
import { BIN, type CliResult, runCli } from '../support/cli';
import { tempDir } from '../support/config';
import { SHIPPED_RULES_DIR } from '../support/rules';

/** No DATABASE_URL, REDIS_URL or keys: checking rules must need none of them. */
const ENV = { NODE_ENV: 'test', LOG_LEVEL: 'silent' };

/** Runs the built command in `cwd`, so that printed paths are relative to it. */
function runIn(cwd: string, args: string[], env: Record<string, string | undefined> = ENV): CliResult {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A project directory with a copy of the shipped rules in `rules/`. */
function projectWithRules(): string {
  const project = tempDir('cf-project');
  fs.cpSync(SHIPPED_RULES_DIR, path.join(project, 'rules'), { recursive: true });
  return project;
}

describe('consentflow rules check', () => {
  it('passes the shipped rules and prints one summary line', () => {
    const loaded = loadRuleSet(SHIPPED_RULES_DIR);
    if (!loaded.ok) throw new Error('the shipped rules have problems');
    const summary = `rules ok: 3 purposes, 5 segments, 4 campaigns, 7 templates (version ${loaded.ruleSet.version.slice(0, 8)})\n`;

    const byArgument = runCli(['rules', 'check', SHIPPED_RULES_DIR], ENV);
    expect(byArgument).toEqual({ status: 0, stdout: summary, stderr: '' });
    expect(runCli(['rules', 'check'], { ...ENV, RULES_DIR: SHIPPED_RULES_DIR })).toEqual({ status: 0, stdout: summary, stderr: '' });
    // Without DIR or RULES_DIR: ./rules of the working directory.
    expect(runIn(projectWithRules(), ['rules', 'check'])).toEqual({ status: 0, stdout: summary, stderr: '' });
  });

  it('prints every problem of a broken copy as file:line:column message, relative to the working directory, and exits 1', () => {
    const project = projectWithRules();
    const rules = path.join(project, 'rules');
    fs.writeFileSync(
      path.join(rules, 'segments/vip.yaml'),
      ['id: vip', 'name: VIP', 'conditions:', '  trait: plan', '  eqals: pro', ''].join('\n'),
    );
    const welcome = path.join(rules, 'campaigns/welcome_series.yaml');
    fs.writeFileSync(welcome, fs.readFileSync(welcome, 'utf8').replace('template: welcome', 'template: welcom').replace('wait: 2d', 'wait: 2 days'));
    const lineOf = (needle: string) => fs.readFileSync(welcome, 'utf8').split('\n').findIndex((line) => line.includes(needle)) + 1;

    const result = runIn(project, ['rules', 'check', 'rules']);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(
      [
        `rules/campaigns/welcome_series.yaml:${lineOf('wait: 2 days')}:11 expected a duration: a whole number from 1 followed by s, m, h, d or w, e.g. "30m", "2h", "14d", "2w"`,
        'rules/segments/vip.yaml:5:3 unrecognized key "eqals"; allowed: trait, equals, not_equals, in, not_in, exists, gt, gte, lt, lte, contains',
        '2 problems',
        '',
      ].join('\n'),
    );
    expect(result.status).toBe(1);

    // Once the file passes its schema, the references in it are checked.
    fs.writeFileSync(welcome, fs.readFileSync(welcome, 'utf8').replace('wait: 2 days', 'wait: 2d'));
    const again = runIn(project, ['rules', 'check', 'rules']);
    expect(again.stdout).toBe(
      [
        `rules/campaigns/welcome_series.yaml:${lineOf('template: welcom')}:17 unknown template "welcom": there is no templates/welcom.*; ` +
          'templates: cart_last_call, cart_reminder, getting_started, tips, we_miss_you, weekly_digest, welcome',
        'rules/segments/vip.yaml:5:3 unrecognized key "eqals"; allowed: trait, equals, not_equals, in, not_in, exists, gt, gte, lt, lte, contains',
        '2 problems',
        '',
      ].join('\n'),
    );
    expect(again.status).toBe(1);
  });

  it('says so in one line when the directory does not exist', () => {
    const missing = path.join(tempDir('cf-rules'), 'nope');
    expect(runCli(['rules', 'check', missing], ENV)).toEqual({ status: 1, stdout: '', stderr: `consentflow: no rules directory at ${missing}\n` });
    const project = tempDir('cf-project');
    expect(runIn(project, ['rules', 'check'])).toEqual({ status: 1, stdout: '', stderr: 'consentflow: no rules directory at rules (RULES_DIR)\n' });
    fs.writeFileSync(path.join(project, 'rules.yaml'), 'id: x\n');
    expect(runIn(project, ['rules', 'check', 'rules.yaml'])).toEqual({
      status: 1,
      stdout: '',
      stderr: 'consentflow: rules.yaml is not a directory: expected the rules directory\n',
    });
  });
});

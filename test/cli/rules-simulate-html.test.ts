import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../../engine/errors';
import { writeFileAtomically } from '../../workers/cli/rules-simulate-command';
import { BIN, runCli } from '../support/cli';
import { tempDir } from '../support/config';
import { SHIPPED_RULES_DIR } from '../support/rules';

/**
 * `consentflow rules simulate --html FILE`, run as the installed command: the page written next to
 * what the command prints, and a path that cannot be written refused with nothing left behind.
 */

/** No DATABASE_URL, REDIS_URL or keys: simulating must need none of them. */
const ENV = { NODE_ENV: 'test', LOG_LEVEL: 'silent' };
const EVENTS = path.resolve(__dirname, '../fixtures/simulate/abandoned_cart.jsonl');
const simulateArgs = ['rules', 'simulate', '--events', EVENTS, '--rules', SHIPPED_RULES_DIR];

describe('consentflow rules simulate --html', () => {
  it('writes the timeline as a page, a lane per person, and prints the same as without --html', () => {
    const dir = tempDir('cf-sim-html');
    const file = path.join(dir, 'timeline.html');
    const plain = runCli(simulateArgs, ENV);
    expect(plain.status).toBe(0);

    const result = runCli([...simulateArgs, '--html', file], ENV);
    expect(result).toEqual({ status: 0, stdout: plain.stdout, stderr: '' });
    // Only the page: no temporary file left beside it.
    expect(fs.readdirSync(dir)).toEqual(['timeline.html']);
    const page = fs.readFileSync(file, 'utf8');
    expect(page.startsWith('<!doctype html>')).toBe(true);
    expect(page).toContain('<h1>Rules simulation: abandoned_cart.jsonl</h1>');
    const lanes = page.slice(0, page.indexOf('</figure>')).split('<div class="lane">').slice(1);
    expect(lanes.map((lane) => /<div class="name">([^<]*)<\/div>/.exec(lane)?.[1])).toEqual(['dora', 'emil', 'fay', 'gus']);
    // Emil leaves the abandoned cart when he orders: the exit and why, in his table.
    expect(page).toContain('exit event Order Completed; cancelled wait until 2026-03-04T11:05:00.000Z');
    // Gus never gave profiling: his skip says so.
    expect(lanes[3]).toContain('class="m k-skipped"');
    expect(page).toContain('no consent for profiling: refused: profiling never granted');
    // The campaign's name from its file, beside its id.
    expect(page).toMatch(/campaign abandoned_cart \([^)]+\)/);
    expect(page).not.toMatch(/https?:\/\/|<script/i);
    // Nothing of the machine it ran on: the events file by its name only.
    expect(page).not.toContain(path.dirname(EVENTS));

    // Run again over it, with --json: the page is replaced whole.
    fs.writeFileSync(file, 'old');
    const json = runCli([...simulateArgs, '--until', '2026-03-04T11:00:00Z', '--json', '--html', file], ENV);
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ people: ['dora', 'emil', 'fay', 'gus'] });
    expect(fs.readFileSync(file, 'utf8')).toContain('to <time datetime="2026-03-04T11:00:00.000Z">');
    expect(fs.readdirSync(dir)).toEqual(['timeline.html']);
  });

  it('writes what events and rule files say as text', () => {
    const dir = tempDir('cf-sim-html');
    const events = path.join(dir, 'hostile.jsonl');
    const who = '<script>alert(1)</script>';
    const lines = fs.readFileSync(EVENTS, 'utf8').replaceAll('"userId":"emil"', `"userId":${JSON.stringify(who)}`);
    fs.writeFileSync(events, lines);
    const file = path.join(dir, 'out.html');
    const result = runCli(['rules', 'simulate', '--events', events, '--rules', SHIPPED_RULES_DIR, '--html', file], ENV);
    expect(result.status).toBe(0);
    const page = fs.readFileSync(file, 'utf8');
    expect(page).not.toContain('<script');
    expect(page).toContain('<div class="name">&lt;script&gt;alert(1)&lt;/script&gt;</div>');
  });

  it('refuses a path it cannot write, naming it, and leaves nothing behind', () => {
    const dir = tempDir('cf-sim-html');
    const missing = path.join(dir, 'no-such-dir', 'timeline.html');
    expect(runCli([...simulateArgs, '--html', missing], ENV)).toEqual({
      status: 1,
      stdout: '',
      stderr: `consentflow: --html ${missing}: no such directory ${path.join(dir, 'no-such-dir')}\n`,
    });
    expect(fs.existsSync(path.join(dir, 'no-such-dir'))).toBe(false);

    // A file where a directory should be, and a directory where the file should be.
    const plainFile = path.join(dir, 'a-file');
    fs.writeFileSync(plainFile, 'x');
    const underFile = runCli([...simulateArgs, '--html', path.join(plainFile, 'timeline.html')], ENV);
    expect(underFile).toEqual({ status: 1, stdout: '', stderr: `consentflow: --html ${path.join(plainFile, 'timeline.html')}: ${plainFile} is not a directory\n` });
    const aDirectory = path.join(dir, 'sub');
    fs.mkdirSync(aDirectory);
    expect(runCli([...simulateArgs, '--html', aDirectory], ENV)).toEqual({
      status: 1,
      stdout: '',
      stderr: `consentflow: --html ${aDirectory}: is a directory: expected a file name\n`,
    });
    expect(fs.readdirSync(dir).sort()).toEqual(['a-file', 'sub']);
    expect(fs.readdirSync(aDirectory)).toEqual([]);
  });

  // root may write anywhere: as root (CI, containers), the command runs as `nobody` instead.
  it('refuses a directory it may not write in', () => {
    const dir = tempDir('cf-sim-html');
    fs.chmodSync(dir, 0o755);
    const locked = path.join(dir, 'locked');
    fs.mkdirSync(locked, { mode: 0o555 });
    const asOrdinaryUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    try {
      const run = spawnSync(process.execPath, [BIN, ...simulateArgs, '--html', path.join(locked, 'timeline.html')], {
        env: { PATH: process.env.PATH, ...ENV },
        encoding: 'utf8',
        timeout: 60_000,
        ...asOrdinaryUser,
      });
      expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
        status: 1,
        stdout: '',
        stderr: `consentflow: --html ${path.join(locked, 'timeline.html')}: cannot write in ${locked} (permission denied)\n`,
      });
      expect(fs.readdirSync(locked)).toEqual([]);
    } finally {
      fs.chmodSync(locked, 0o755);
    }
  });

  it('replaces a file whole or not at all', () => {
    const dir = tempDir('cf-sim-html');
    const file = path.join(dir, 'page.html');
    writeFileAtomically(file, 'first', '--html');
    writeFileAtomically(file, 'second', '--html');
    expect(fs.readFileSync(file, 'utf8')).toBe('second');
    // The rename fails (a non-empty directory is in the way): an error naming the path, the
    // temporary file removed, the directory as it was.
    const blocked = path.join(dir, 'blocked');
    fs.mkdirSync(blocked);
    fs.writeFileSync(path.join(blocked, 'keep'), 'x');
    expect(() => writeFileAtomically(blocked, 'third', '--html')).toThrow(AppError);
    expect(() => writeFileAtomically(blocked, 'third', '--html')).toThrow(`--html ${blocked}: `);
    expect(fs.readdirSync(dir).sort()).toEqual(['blocked', 'page.html']);
    expect(fs.readdirSync(blocked)).toEqual(['keep']);
    expect(fs.readFileSync(file, 'utf8')).toBe('second');
  });
});

import fs from 'node:fs';
import path from 'node:path';
import { processesMentioning, runCli, spawnCli } from '../support/cli';
import { tempDir } from '../support/config';
import { startTestSmtpServer } from '../support/smtp-server';

/** The newcomer's first command: `consentflow demo`, the built binary in a real process. */
describe('consentflow demo', () => {
  it('plays the whole story on the embedded default, narrates each step, ends with a clean erasure receipt and exits 0', async () => {
    const dataDir = path.join(tempDir('cf-demo'), 'data');
    // Stands in for docker compose's Mailpit: the story's emails are delivered to it at the end.
    const mailpit = await startTestSmtpServer();
    // A user's own settings must not be used: these would fail if they were.
    const cli = spawnCli(['demo', '--data-dir', dataDir, '--forward-to', mailpit.url], {
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/not-the-demo',
      SMTP_URL: 'smtp://127.0.0.1:1',
      LOG_LEVEL: 'error',
    });
    try {
      const code = await cli.exited;
      const output = cli.output();
      expect({ code, output }).toMatchObject({ code: 0 });
      for (const step of [
        'step 1/9: An anonymous visitor browses',
        'step 2/9: The visitor accepts the cookie banner',
        'step 3/9: She signs up to the newsletter (double opt-in)',
        'step 4/9: She confirms by the link in the email',
        'step 5/9: The welcome email goes out',
        'step 6/9: She becomes an engaged reader',
        'step 7/9: The weekly digest broadcast',
        'step 8/9: She unsubscribes with one click',
        'step 9/9: She asks to be forgotten',
      ]) {
        expect(output).toContain(step);
      }
      // What arrived, which rule decided, which email went out.
      expect(output).toContain('→ GET /t.gif');
      expect(output).toContain('decision (rule welcome_series): campaign:welcome_series:enrol → allowed');
      expect(output).toContain('decision (rule weekly_digest)');
      expect(output).toContain('email out: "Please confirm your subscription" to ann@example.com');
      expect(output).toContain('email out: "Welcome, Ann!"');
      expect(output).toContain('email out: "This week\'s digest"');
      expect(output).toContain('email_marketing: withdrawn');
      expect(output).toContain('receipt signature valid');
      expect(output).toContain('done: every step happened as told');

      // The receipt printed last is the verified one.
      const receiptText = /the erasure receipt \(it names nobody\):\n(\{[\s\S]*?\n\})\n/.exec(output)?.[1] ?? '{}';
      expect(receiptText).not.toContain('ann@example.com');
      const receipt = JSON.parse(receiptText) as {
        verification?: { clean?: boolean };
        profilesErased?: number;
      };
      expect(receipt.verification?.clean).toBe(true);
      expect(receipt.profilesErased).toBe(1);

      // The emails stay in the data dir's outbox to open; nothing of the engine is left running.
      const emails = fs.readdirSync(path.join(dataDir, 'outbox')).filter((name) => name.endsWith('.eml'));
      expect(emails.length).toBe(3);
      expect(output).toContain(path.join(dataDir, 'outbox'));
      expect(processesMentioning(dataDir)).toEqual([]);
      expect(fs.existsSync(path.join(dataDir, 'consentflow.pid'))).toBe(false);

      // --forward-to: the same three messages, byte for byte, delivered over SMTP to their recipient.
      expect(output).toContain(`all 3 were delivered to ${mailpit.url} as well`);
      expect(mailpit.messages.map((m) => m.subject).sort()).toEqual(['Please confirm your subscription', "This week's digest", 'Welcome, Ann!']);
      const outboxIds = emails.map((name) => /^Message-ID: *(\S+)/im.exec(fs.readFileSync(path.join(dataDir, 'outbox', name), 'utf8'))?.[1]).sort();
      expect(mailpit.messages.map((m) => m.header('message-id')).sort()).toEqual(outboxIds);
      for (const message of mailpit.messages) expect(message.to).toEqual(['ann@example.com']);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await mailpit.close();
    }
  }, 180_000);

  it('refuses a --forward-to that is not an SMTP URL before starting anything', () => {
    const dataDir = path.join(tempDir('cf-demo-bad'), 'data');
    const result = runCli(['demo', '--data-dir', dataDir, '--forward-to', 'http://127.0.0.1:8025'], { LOG_LEVEL: 'error' });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--forward-to: expected smtp://HOST:PORT or smtps://HOST:PORT (Mailpit: smtp://127.0.0.1:1025), not http://');
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});

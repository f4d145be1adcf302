import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, loadKeys } from '../../engine/config';
import { capturingLogger } from '../support/log-capture';
import { tempDir, testKeysEnv } from '../support/config';

/** The one-line message of the ConfigError `env` makes (fails when it makes none). */
function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`no error for ${JSON.stringify(env)}`);
}

describe('configuration', () => {
  it('has documented defaults and is frozen', () => {
    const config = loadConfig({}, '/srv/app');
    expect(config.http.port).toBe(8080);
    expect(config.http.host).toBe('127.0.0.1');
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379', urlExplicit: false, embedded: 'auto' });
    expect(config.database.url).toBeUndefined();
    expect(config.dataDir).toBe('/srv/app/.data');
    expect(config.rulesDir).toBe('/srv/app/rules');
    expect(config.queuePrefix).toBe('{cf}');
    expect(config.http.publicUrl).toBe('http://localhost:8080');
    expect(config.email).toEqual({ smtpUrl: undefined, from: 'consentflow <no-reply@localhost>', poolSize: 5, ratePerSecond: undefined, dkim: undefined });
    expect(config.privacy).toMatchObject({ honorDnt: true, erasure: { deadlineDays: 30, suppress: true, tombstoneDays: 30, webhooks: [], webhookSecret: undefined } });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.email)).toBe(true);
    expect(Object.isFrozen(config.http)).toBe(true);
    expect(() => {
      (config.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ HTTP_PORT: '', DATABASE_URL: '' }).http.port).toBe(8080);
    const config = loadConfig({ SMTP_URL: '', EMAIL_FROM: '', HONOR_DNT: '' });
    expect(config.email).toEqual({ smtpUrl: undefined, from: 'consentflow <no-reply@localhost>', poolSize: 5, ratePerSecond: undefined, dkim: undefined });
    expect(config.privacy.honorDnt).toBe(true);
  });

  it('reads the email settings', () => {
    const config = loadConfig({ SMTP_URL: 'smtp://user:pass@mail.example.com:587', EMAIL_FROM: 'news@shop.example' });
    expect(config.email).toEqual({ smtpUrl: 'smtp://user:pass@mail.example.com:587', from: 'news@shop.example', poolSize: 5, ratePerSecond: undefined, dkim: undefined });
  });

  it.each(['news@shop.example', 'Shop News <news@shop.example>', '"Shop, Inc." <news+pl@mail.shop.example>', 'Sklep Łódź <sklep@lodz.example>', '<news@shop.example>'])(
    'accepts EMAIL_FROM=%j',
    (from) => {
      expect(loadConfig({ EMAIL_FROM: from }).email.from).toBe(from);
    },
  );

  it.each([
    ['true', true],
    ['false', false],
    ['FALSE', false],
  ])('reads HONOR_DNT=%j as %j', (value, expected) => {
    expect(loadConfig({ HONOR_DNT: value }).privacy.honorDnt).toBe(expected);
  });

  it('reads the erasure settings and refuses bad ones, naming what is allowed', () => {
    const config = loadConfig({ ERASURE_WEBHOOKS: 'https://crm.example.com/gdpr, http://10.0.0.5:8080/erase', ERASURE_SUPPRESS: 'false', ERASURE_DEADLINE_DAYS: '14' });
    expect(config.privacy.erasure).toMatchObject({ webhooks: ['https://crm.example.com/gdpr', 'http://10.0.0.5:8080/erase'], suppress: false, deadlineDays: 14 });
    expect(() => loadConfig({ ERASURE_WEBHOOKS: 'ftp://x.example.com' })).toThrow('ERASURE_WEBHOOKS: expected a comma-separated list of http:// or https:// URLs');
    expect(() => loadConfig({ PUBLIC_URL: 'https://shop.example/x"onmouseover="alert(1)' })).toThrow(
      'PUBLIC_URL="https://shop.example/x\\"onmouseover=\\"alert(1)": expected a URL without spaces, control characters, quotes, angle brackets or backslashes',
    );
    expect(loadConfig({ PUBLIC_URL: 'https://shop.example/cf/' }).http.publicUrl).toBe('https://shop.example/cf');
    expect(() => loadConfig({ ERASURE_DEADLINE_DAYS: '0' })).toThrow('ERASURE_DEADLINE_DAYS="0": expected a positive number of days');
    expect(() => loadConfig({ ERASURE_SUPPRESS: 'yes' })).toThrow('ERASURE_SUPPRESS="yes": expected true or false');
    expect(() => loadConfig({ ERASURE_WEBHOOK_SECRET: 'short' })).toThrow('ERASURE_WEBHOOK_SECRET: expected a secret of at least 16 characters');
  });

  it.each([
    [{ HTTP_PORT: 'abc' }, 'invalid configuration: HTTP_PORT="abc": expected an integer between 0 and 65535 (0: any free port)'],
    [{ HTTP_PORT: '70000' }, 'HTTP_PORT="70000": expected an integer between 0 and 65535 (0: any free port)'],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL: expected a redis:// or rediss:// URL'],
    [{ REDIS_URL: 'http://localhost:6379' }, 'REDIS_URL: expected a redis:// or rediss:// URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL: expected a postgres:// or postgresql:// URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL="loud": expected fatal, error, warn, info, debug, trace or silent'],
    [{ EMBEDDED_REDIS: 'yes' }, 'EMBEDDED_REDIS="yes": expected auto, always or off'],
    [{ QUEUE_PREFIX: 'a b' }, 'QUEUE_PREFIX="a b": expected 1-64 characters'],
    [{ SMTP_URL: 'http://mail.example.com' }, 'SMTP_URL: expected an smtp:// or smtps:// URL'],
    [{ EMAIL_FROM: 'no-reply' }, 'EMAIL_FROM="no-reply": expected addr@domain or Name <addr@domain>'],
    [{ EMAIL_FROM: 'Shop <news@shop.example' }, 'EMAIL_FROM="Shop <news@shop.example": expected addr@domain or Name <addr@domain>'],
    [{ EMAIL_FROM: 'Shop <news@shop.example> x' }, 'EMAIL_FROM="Shop <news@shop.example> x": expected addr@domain or Name <addr@domain>'],
    [{ EMAIL_FROM: 'a@b.example, c@d.example' }, 'EMAIL_FROM="a@b.example, c@d.example": expected addr@domain'],
    [{ EMAIL_FROM: 'Shop\r\nBcc: x@y.example <news@shop.example>' }, 'EMAIL_FROM="Shop\\r\\nBcc: x@y.example <news@shop.example>": expected addr@domain'],
    [{ HONOR_DNT: 'yes' }, 'HONOR_DNT="yes": expected true or false'],
    [{ HONOR_DNT: '1' }, 'HONOR_DNT="1": expected true or false'],
    [{ VAULT_DATABASE_URL: 'postgres://localhost/vault' }, 'VAULT_DATABASE_URL is set but DATABASE_URL is not'],
    [{ MASTER_KEY: 'x', MASTER_KEY_FILE: '/k' }, 'MASTER_KEY and MASTER_KEY_FILE are both set'],
  ])('rejects %j with one clear line', (env, expected) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });

  it('never echoes a secret value in its message', () => {
    const secret = 'redis://:hunter2@host:6379';
    expect(() => loadConfig({ REDIS_URL: secret.replace('redis', 'http') })).toThrow(/REDIS_URL: /);
    try {
      loadConfig({ REDIS_URL: secret.replace('redis', 'http') });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});

describe('keys', () => {
  it('accepts base64 and hex keys from the environment', () => {
    const env = testKeysEnv();
    const keys = loadKeys(loadConfig({ ...env, PSEUDONYM_KEY: 'ab'.repeat(32) }), capturingLogger().log);
    expect(keys.master.equals(Buffer.from(env.MASTER_KEY as string, 'base64'))).toBe(true);
    expect(keys.pseudonym.equals(Buffer.alloc(32, 0xab))).toBe(true);
  });

  it('reads key files and says which file is wrong', () => {
    const dir = tempDir();
    const file = path.join(dir, 'master.key');
    fs.writeFileSync(file, 'too-short\n');
    const { MASTER_KEY: _unused, ...env } = testKeysEnv();
    expect(() => loadKeys(loadConfig({ ...env, MASTER_KEY_FILE: file }), capturingLogger().log)).toThrow(
      `MASTER_KEY_FILE="${file}": expected 32 random bytes as base64 or 64 hex characters`,
    );
    expect(() => loadKeys(loadConfig({ ...env, MASTER_KEY_FILE: path.join(dir, 'missing') }), capturingLogger().log)).toThrow(
      /cannot read it \(ENOENT\)/,
    );
  });

  it('generates development keys once under DATA_DIR/keys, with a loud warning, and reuses them', () => {
    const dataDir = tempDir();
    const first = capturingLogger();
    const keys = loadKeys(loadConfig({ DATA_DIR: dataDir }), first.log);
    expect(first.text()).toContain('DEVELOPMENT KEY GENERATED');
    expect(fs.statSync(path.join(dataDir, 'keys', 'master.key')).mode & 0o777).toBe(0o600);
    const second = capturingLogger();
    const again = loadKeys(loadConfig({ DATA_DIR: dataDir }), second.log);
    expect(again.master.equals(keys.master)).toBe(true);
    expect(again.linkSigning.equals(keys.linkSigning)).toBe(true);
    expect(second.text()).not.toContain('DEVELOPMENT KEY GENERATED');
    expect(keys.master.equals(keys.pseudonym)).toBe(false);
  });

  it('refuses generated keys in production', () => {
    const dataDir = tempDir();
    expect(() => loadKeys(loadConfig({ NODE_ENV: 'production', DATA_DIR: dataDir }), capturingLogger().log)).toThrow(
      'MASTER_KEY (or MASTER_KEY_FILE) is required when NODE_ENV=production',
    );
    expect(fs.existsSync(path.join(dataDir, 'keys'))).toBe(false);
  });

  it('takes DKIM settings all together or not at all', () => {
    expect(loadConfig({ DKIM_DOMAIN: 'shop.example', DKIM_SELECTOR: 'mail', DKIM_PRIVATE_KEY_FILE: 'keys/dkim.pem' }, '/srv').email.dkim).toEqual({
      domain: 'shop.example',
      selector: 'mail',
      privateKeyFile: '/srv/keys/dkim.pem',
    });
    expect(loadConfig({}).email.dkim).toBeUndefined();
    expect(() => loadConfig({ DKIM_DOMAIN: 'shop.example' })).toThrow(
      'invalid configuration: DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE go together; set all three to sign, or none',
    );
    expect(() => loadConfig({ SMTP_POOL_SIZE: '0' })).toThrow(/SMTP_POOL_SIZE="0": expected a positive number of connections/);
    expect(loadConfig({ EMAIL_RATE_LIMIT: '50' }).email.ratePerSecond).toBe(50);
    expect(() => loadConfig({ EMAIL_RATE_LIMIT: 'fast' })).toThrow(/EMAIL_RATE_LIMIT="fast": expected a positive number of messages a second/);
  });
});

describe('per-domain rate limits and the unsubscribe mailbox', () => {
  it('reads EMAIL_DOMAIN_RATE_LIMITS: lower case, punycode, * for each domain not listed; unset by default', () => {
    expect(loadConfig({}).email.domainRateLimits).toBeUndefined();
    expect(loadConfig({ EMAIL_DOMAIN_RATE_LIMITS: '' }).email.domainRateLimits).toBeUndefined();
    expect(loadConfig({ EMAIL_DOMAIN_RATE_LIMITS: 'gmail.com=20/s, Outlook.COM = 600/m,bücher.de=10/h,*=50/s,wp.pl=1000/d' }).email.domainRateLimits).toEqual([
      { domain: 'gmail.com', max: 20, perMs: 1_000 },
      { domain: 'outlook.com', max: 600, perMs: 60_000 },
      { domain: 'xn--bcher-kva.de', max: 10, perMs: 3_600_000 },
      { domain: '*', max: 50, perMs: 1_000 },
      { domain: 'wp.pl', max: 1000, perMs: 86_400_000 },
    ]);
  });

  it.each([
    ['gmail.com=20', "EMAIL_DOMAIN_RATE_LIMITS=\"gmail.com=20\": 'gmail.com=20' is not DOMAIN=COUNT/UNIT; expected a comma-separated list of DOMAIN=COUNT/UNIT such as gmail.com=20/s,outlook.com=600/m,*=50/s"],
    ['gmail.com=20/w', "'gmail.com=20/w': 'w' is not a unit"],
    ['gmail.com=0/s', "'gmail.com=0/s': the count must be a positive integer"],
    ['gmail.com=-1/s', "'gmail.com=-1/s' is not DOMAIN=COUNT/UNIT"],
    ['gmail.com=2.5/s', "'gmail.com=2.5/s' is not DOMAIN=COUNT/UNIT"],
    ['gmail=20/s', "'gmail=20/s': 'gmail' is not a domain name"],
    ['user@gmail.com=20/s', "'user@gmail.com=20/s': 'user@gmail.com' is not a domain name"],
    ['gmail.com=20/s,,*=5/s', 'an empty entry; expected a comma-separated list'],
    ['gmail.com=20/s,GMAIL.com=5/m', "'GMAIL.com' is listed twice; give each domain one limit"],
  ])('rejects EMAIL_DOMAIN_RATE_LIMITS=%j saying what is wrong and what is allowed', (value, expected) => {
    const message = problem({ EMAIL_DOMAIN_RATE_LIMITS: value });
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });

  it('reads UNSUBSCRIBE_MAILTO, a bare address', () => {
    expect(loadConfig({}).email.unsubscribeMailto).toBeUndefined();
    expect(loadConfig({ UNSUBSCRIBE_MAILTO: 'unsubscribe@news.example.com' }).email.unsubscribeMailto).toBe('unsubscribe@news.example.com');
    expect(loadConfig({ UNSUBSCRIBE_MAILTO: 'list+unsub@example.com' }).email.unsubscribeMailto).toBe('list+unsub@example.com');
  });

  it.each(['unsubscribe', 'News <unsubscribe@news.example.com>', 'a b@news.example.com', 'u@news.example.com?subject=x', 'u@news.example.com\r\nBcc: x@y.example', 'u%40@news.example.com'])(
    'rejects UNSUBSCRIBE_MAILTO=%j',
    (value) => {
      const message = problem({ UNSUBSCRIBE_MAILTO: value });
      expect(message).toContain(`UNSUBSCRIBE_MAILTO=${JSON.stringify(value)}: expected a bare address such as unsubscribe@news.example.com`);
      expect(message).not.toMatch(/\n/);
    },
  );
});

describe('rate limits of the public routes', () => {
  it('has defaults for a site behind NATs: 100/s with bursts of 1000 per address, 1000/s with bursts of 10000 per write key', () => {
    expect(loadConfig({}).http.rateLimits).toEqual({ perIp: { perSecond: 100, burst: 1_000 }, perWriteKey: { perSecond: 1_000, burst: 10_000 } });
    expect(loadConfig({ HTTP_RATE_LIMIT_PER_IP: '', HTTP_RATE_LIMIT_PER_WRITE_KEY: '' }).http.rateLimits).toEqual(loadConfig({}).http.rateLimits);
    expect(Object.isFrozen(loadConfig({}).http.rateLimits.perIp)).toBe(true);
  });

  it.each([
    ['50/s', { perSecond: 50, burst: 50 }],
    ['50/s,burst=400', { perSecond: 50, burst: 400 }],
    [' 600 / M , burst = 20 ', { perSecond: 10, burst: 20 }],
    ['3600/h', { perSecond: 1, burst: 3600 }],
    ['0', undefined],
    ['off', undefined],
    ['OFF', undefined],
  ])('reads HTTP_RATE_LIMIT_PER_IP=%j', (value, expected) => {
    expect(loadConfig({ HTTP_RATE_LIMIT_PER_IP: value }).http.rateLimits.perIp).toEqual(expected);
    expect(loadConfig({ HTTP_RATE_LIMIT_PER_WRITE_KEY: value }).http.rateLimits.perWriteKey).toEqual(expected);
  });

  it.each(['100', '100/w', '0/s', '-5/s', '2.5/s', '100/s,burst=0', '100/s,burst', '100/s burst=5', 'none', '100/s,100/m'])(
    'rejects HTTP_RATE_LIMIT_PER_IP=%j in one line naming the variable and what is allowed',
    (value) => {
      for (const variable of ['HTTP_RATE_LIMIT_PER_IP', 'HTTP_RATE_LIMIT_PER_WRITE_KEY']) {
        const message = problem({ [variable]: value });
        expect(message).toBe(
          `invalid configuration: ${variable}=${JSON.stringify(value)}: expected COUNT/UNIT with an optional ,burst=N (COUNT and N positive integers, UNIT s, m or h), such as 100/s,burst=1000; or 0 or off to turn the limit off`,
        );
      }
    },
  );
});

import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, loadKeys } from '../../engine/config';
import { capturingLogger } from '../support/log-capture';
import { tempDir, testKeysEnv } from '../support/config';

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
    expect(config.privacy).toEqual({ honorDnt: true });
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

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { type Config, ConfigError, type KeySource } from './config';

/**
 * The three secrets. They live in the environment or in key files, never in the database, so a
 * database dump or backup alone cannot re-identify anyone (GDPR Art. 4(5), 32(1)(a)).
 */
export interface Keys {
  /** Wraps the per-person data keys in the vault. */
  readonly master: Buffer;
  /** HMAC key for pseudonyms and blind indexes. */
  readonly pseudonym: Buffer;
  /** HMAC key for signed links (unsubscribe, preferences, confirmations). */
  readonly linkSigning: Buffer;
}

const KEY_BYTES = 32;

function decodeKey(source: KeySource, text: string, where: string): Buffer {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (bytes.length !== KEY_BYTES || (!/^[A-Za-z0-9+/_=-]+$/.test(trimmed))) {
    throw new ConfigError(
      `invalid configuration: ${where}: expected ${KEY_BYTES} random bytes as base64 or 64 hex characters (e.g. \`openssl rand -base64 32\`)`,
    );
  }
  return bytes;
}

function loadOne(config: Config, source: KeySource, fileName: string, log: Logger): Buffer {
  if (source.value !== undefined) return decodeKey(source, source.value, source.variable);
  if (source.file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(source.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
      throw new ConfigError(`invalid configuration: ${source.variable}_FILE=${JSON.stringify(source.file)}: cannot read it (${code})`);
    }
    return decodeKey(source, text, `${source.variable}_FILE=${JSON.stringify(source.file)}`);
  }
  if (config.env === 'production') {
    throw new ConfigError(
      `invalid configuration: ${source.variable} (or ${source.variable}_FILE) is required when NODE_ENV=production; generate one with \`openssl rand -base64 32\``,
    );
  }
  const keyDir = path.join(config.dataDir, 'keys');
  const keyPath = path.join(keyDir, fileName);
  if (fs.existsSync(keyPath)) return decodeKey(source, fs.readFileSync(keyPath, 'utf8'), keyPath);
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(KEY_BYTES);
  // 'wx' so two processes starting at once cannot each write a different key: the loser reads the winner's.
  try {
    fs.writeFileSync(keyPath, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return decodeKey(source, fs.readFileSync(keyPath, 'utf8'), keyPath);
  }
  log.warn(
    { key: source.variable, path: keyPath },
    `DEVELOPMENT KEY GENERATED: ${source.variable} was not set, so a random key was written to ${keyPath}. ` +
      'Losing this file makes the vault unreadable; never use generated keys in production (NODE_ENV=production refuses them).',
  );
  return key;
}

/** Resolves the keys from env, key files or (development only) generated files under DATA_DIR/keys. */
export function loadKeys(config: Config, log: Logger): Keys {
  const { keySources } = config;
  return Object.freeze({
    master: loadOne(config, keySources.master, 'master.key', log),
    pseudonym: loadOne(config, keySources.pseudonym, 'pseudonym.key', log),
    linkSigning: loadOne(config, keySources.linkSigning, 'link-signing.key', log),
  });
}

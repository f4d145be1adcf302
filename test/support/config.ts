import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Config, loadConfig } from '../../engine/config';
import { TEST_REDIS_URL, testQueuePrefix } from './env';

export function tempDir(label = 'cf'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`));
}

export function testKeysEnv(): Record<string, string> {
  return {
    MASTER_KEY: randomBytes(32).toString('base64'),
    PSEUDONYM_KEY: randomBytes(32).toString('base64'),
    LINK_SIGNING_KEY: randomBytes(32).toString('base64'),
  };
}

/** The environment of an engine under test: its own data dir and queue prefix, real services. */
export function testEnv(overrides: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NODE_ENV: 'test',
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: testQueuePrefix(),
    DATA_DIR: tempDir('cf-data'),
    HTTP_PORT: '0',
    LOG_LEVEL: 'silent',
    // Every test client is 127.0.0.1: limits no ordinary test reaches (public-flood.test.ts sets its own).
    HTTP_RATE_LIMIT_PER_IP: '10000/s,burst=100000',
    HTTP_RATE_LIMIT_PER_WRITE_KEY: '10000/s,burst=100000',
    ...testKeysEnv(),
    ...overrides,
  };
}

export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  return loadConfig(testEnv(overrides));
}

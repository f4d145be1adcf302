import { loadKeys } from '../../engine/config';
import type { Logger } from '../../engine/log/logger';
import { openServices, type Services } from '../../engine/runtime/services';
import { capturingLogger } from './log-capture';
import { testConfig } from './config';
import { createTestDatabase, type TestDatabase } from './database';

export interface TestServices {
  readonly services: Services;
  readonly database: TestDatabase;
  readonly logText: () => string;
  close(): Promise<void>;
}

/** The engine's real services over a fresh PostgreSQL database and a private queue prefix. */
export async function openTestServices(env: Record<string, string | undefined> = {}, log?: Logger): Promise<TestServices> {
  const database = await createTestDatabase();
  const capture = capturingLogger('info');
  const logger = log ?? capture.log;
  const config = testConfig({ DATABASE_URL: database.url, DATABASE_POOL_SIZE: '4', ...env });
  try {
    const services = await openServices({ config, keys: loadKeys(config, logger), log: logger, searchPath: process.env.PATH ?? '' });
    return {
      services,
      database,
      logText: capture.text,
      async close() {
        await services.releasers.releaseAll(logger, 10_000);
        await database.drop();
      },
    };
  } catch (err) {
    await database.drop();
    throw err;
  }
}

/**
 * Where the tests find their services: DATABASE_URL / REDIS_URL when set, else the local defaults
 * (the same rule as scripts/check-services.js, which runs first and explains what is missing).
 */
export const TEST_DATABASE_ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 10);
}

/**
 * This jest run's id (set by global-setup.ts, inherited by the workers): each queue prefix carries
 * it, so the teardown removes this run's keys and never those of another run on the same Redis.
 */
export function testRunId(): string {
  return process.env.CF_TEST_RUN ?? 'norun';
}

/** A queue prefix no other test file uses, still hash-tagged like the default. */
export function testQueuePrefix(): string {
  return `{cft-${testRunId()}-${randomSuffix()}}`;
}

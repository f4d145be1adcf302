import type { FastifyInstance } from 'fastify';
import { buildHttpServer } from '../../engine/http/server';
import { listen } from '../support/http';
import { startTestRedisServer, type TestRedisServer } from '../support/redis-server';
import { openTestServices } from '../support/services';
import { waitFor } from '../support/wait';

describe('Redis as a dependency', () => {
  it('refuses to start against a Redis that evicts keys, saying what to change', async () => {
    const redis = await startTestRedisServer(['--maxmemory-policy', 'allkeys-lru']);
    try {
      await expect(openTestServices({ REDIS_URL: redis.url })).rejects.toThrow(
        `Redis at ${redis.url} has maxmemory-policy 'allkeys-lru'; consentflow needs 'noeviction'`,
      );
    } finally {
      await redis.stop();
    }
  });

  it('refuses to start when Redis is unreachable, in one line naming where', async () => {
    const redis = await startTestRedisServer();
    await redis.stop();
    await expect(openTestServices({ REDIS_URL: redis.url })).rejects.toThrow(
      new RegExp(`^Redis at redis://127\\.0\\.0\\.1:${redis.port} is unreachable \\(ECONNREFUSED\\)`),
    );
  });

  describe('while running', () => {
    let redis: TestRedisServer;
    let app: FastifyInstance;
    let base: string;
    let close: () => Promise<void>;
    beforeAll(async () => {
      redis = await startTestRedisServer(['--maxmemory-policy', 'noeviction']);
      const env = await openTestServices({ REDIS_URL: redis.url });
      app = await buildHttpServer(env.services);
      base = await listen(app);
      close = async () => {
        await app.close();
        await env.close();
        await redis.stop();
      };
    });
    afterAll(() => close());

    it('reports not ready (503) while Redis is down and ready again when it returns, without a restart', async () => {
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      await redis.stop();
      const down = await waitFor(
        async () => {
          const res = await fetch(`${base}/readyz`);
          return res.status === 503 ? ((await res.json()) as { checks: { redis: string; postgres: string } }) : undefined;
        },
        { what: 'readyz 503' },
      );
      expect(down.checks.postgres).toBe('ok');
      expect(down.checks.redis).toMatch(/^unreachable/);
      // Liveness does not depend on Redis.
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toContain('consentflow_queue_scrape_success 0');
      await redis.start();
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, { what: 'readyz 200 again' });
    });
  });
});

import type { FastifyInstance } from 'fastify';
import { pingEveryMaster } from '../../redis/connection';
import type { HttpDeps } from '../deps';

const CHECK_TIMEOUT_MS = 2_000;

async function check(probe: () => Promise<unknown>): Promise<'ok' | string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
      }),
    ]);
    return 'ok';
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return `unreachable (${e.code ?? e.message})`;
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(app: FastifyInstance, deps: Pick<HttpDeps, 'databases' | 'redis'>): void {
  // Liveness: the process answers. No dependency is checked, so a database outage never gets the
  // process restarted in a loop by its supervisor.
  app.get('/healthz', async () => ({ status: 'ok' }));

  // Readiness: take traffic only while PostgreSQL and Redis (every master of a Redis Cluster) answer.
  app.get('/readyz', async (_request, reply) => {
    const [postgres, redis] = await Promise.all([check(() => deps.databases.ping()), check(() => pingEveryMaster(deps.redis))]);
    const ready = postgres === 'ok' && redis === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: { postgres, redis } });
  });
}

import type { Worker } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { buildHttpServer } from '../engine/http/server';
import { buildWorkerMetricsServer } from '../engine/http/worker-metrics-server';
import type { QueueName } from '../engine/queues/catalog';
import { type JobHandlers, startWorker } from '../engine/queues/worker';
import { queueSealingKey } from '../engine/queues/sealing';
import { createRedis } from '../engine/redis/connection';
import type { Services } from '../engine/runtime/services';
import { HANDLERS, type HandlerRegistry } from './handlers';

export interface ProcessRoles {
  /** Serve the HTTP API (tracking, admin, health, metrics). */
  readonly api: boolean;
  /** Run workers for these queues. */
  readonly queues: readonly QueueName[];
}

export interface RunningProcess {
  /** Where the API listens, when it runs; else where a worker serves its metrics (WORKER_METRICS_PORT), if it does. */
  readonly url: string | undefined;
  /** Stops intake, drains in-flight jobs, closes every resource in reverse order. False if not clean. */
  stop(): Promise<boolean>;
}

/**
 * Wires engine pieces into one process: the API and/or workers for the given queues, over the shared
 * services. Owns nothing else; signal handling belongs to the entry point that calls this.
 */
export async function runProcess(services: Services, roles: ProcessRoles, handlers: HandlerRegistry = HANDLERS): Promise<RunningProcess> {
  const { config, log, releasers } = services;
  try {
    if (roles.queues.length > 0) {
      // BullMQ duplicates this connection for each worker's blocking client.
      const workerConnection = createRedis(services.redisEndpoint, 'worker', log, 'consentflow-worker');
      releasers.add('worker redis connection', async () => {
        await workerConnection.quit().catch(() => workerConnection.disconnect());
      });
      const workers: Worker[] = [];
      for (const queue of roles.queues) {
        const build = handlers[queue] as ((s: Services) => JobHandlers<typeof queue>) | undefined;
        if (!build) throw new Error(`queue '${queue}' has no worker in this version`);
        workers.push(
          startWorker(queue, build(services), {
            connection: workerConnection,
            prefix: config.queuePrefix,
            log,
            sealingKey: queueSealingKey(services.keys.master),
            // The relay's global rate (a provider's sending limit), shared by every email worker through Redis.
            ...(queue === 'email' && config.email.ratePerSecond ? { limiter: { max: config.email.ratePerSecond, durationMs: 1_000 } } : {}),
          }),
        );
      }
      // Closing a worker stops it taking jobs and waits for the active ones (the drain); the release
      // deadline bounds the wait.
      releasers.add('workers', async () => {
        await Promise.all(workers.map((worker) => worker.close()));
      });
      log.info({ queues: roles.queues }, 'workers started');
    }

    let app: FastifyInstance | undefined;
    let url: string | undefined;
    if (roles.api) {
      app = await buildHttpServer(services);
      await app.listen({ host: config.http.host, port: config.http.port });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : config.http.port;
      url = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${port}`;
      // Released first: stop intake before draining workers and closing stores.
      releasers.add('http server', async () => {
        await app?.close();
      });
      log.info({ url }, 'API listening');
    } else if (roles.queues.length > 0 && config.http.workerMetricsPort !== undefined) {
      const metricsServer = await buildWorkerMetricsServer(services);
      await metricsServer.listen({ host: config.http.host, port: config.http.workerMetricsPort });
      const address = metricsServer.server.address();
      const port = typeof address === 'object' && address ? address.port : config.http.workerMetricsPort;
      url = `http://${config.http.host.includes(':') ? `[${config.http.host}]` : config.http.host}:${port}`;
      releasers.add('metrics server', async () => {
        await metricsServer.close();
      });
      log.info({ url }, 'worker metrics listening');
    }

    return { url, stop: () => releasers.releaseAll(log, config.shutdownTimeoutMs) };
  } catch (err) {
    await releasers.releaseAll(log, config.shutdownTimeoutMs);
    throw err;
  }
}

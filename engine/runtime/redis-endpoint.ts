import type { Config } from '../config';
import type { Releasers } from '../lifecycle/releasers';
import type { Logger } from '../log/logger';
import { createRedis, describeEndpoint, type RedisEndpoint } from '../redis/connection';
import { startEmbeddedRedis } from '../redis/embedded';

async function reachable(url: string, log: Logger): Promise<boolean> {
  const probe = createRedis({ url }, 'producer', log.child({ level: 'silent' }), 'consentflow-probe');
  probe.options.retryStrategy = () => null;
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/**
 * Which Redis to use: the cluster of REDIS_CLUSTER_NODES, or REDIS_URL when given; otherwise the default URL if something answers there;
 * otherwise (EMBEDDED_REDIS=auto, not in production) a private redis-server under DATA_DIR.
 * EMBEDDED_REDIS=always skips the probe.
 */
export async function resolveRedisEndpoint(
  config: Config,
  releasers: Releasers,
  log: Logger,
  searchPath: string,
): Promise<RedisEndpoint> {
  const { url, urlExplicit, embedded, cluster } = config.redis;
  // REDIS_CLUSTER_NODES: a Redis Cluster, never probed or replaced by an embedded redis-server.
  if (cluster) return { cluster };
  const mayEmbed = !urlExplicit && embedded !== 'off' && config.env !== 'production';
  if (embedded === 'always' && urlExplicit) {
    log.warn('EMBEDDED_REDIS=always is ignored because REDIS_URL is set');
  }
  if (!mayEmbed || (embedded === 'auto' && (await reachable(url, log)))) return { url };
  if (embedded === 'auto') log.info({ redis: describeEndpoint({ url }) }, 'no Redis answers at the default URL; starting an embedded redis-server');
  const server = await startEmbeddedRedis(config.dataDir, searchPath, log);
  releasers.add('embedded redis-server', () => server.stop());
  return { socketPath: server.socketPath };
}

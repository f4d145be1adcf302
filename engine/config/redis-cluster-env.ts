import { z } from 'zod';

/**
 * REDIS_CLUSTER_NODES: the seed nodes of a Redis Cluster, comma-separated, each `host:port` or a
 * `redis://[user:password@]host:port` / `rediss://…` URL. The client learns the other nodes from the
 * seeds (CLUSTER SLOTS), so a few are enough. Credentials and TLS are per cluster, not per node:
 * the first URL's user and password apply to every node, and all URLs must agree on redis:// or
 * rediss://.
 */
export interface RedisClusterTarget {
  readonly nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: boolean;
}

const RULE = 'expected a comma-separated list of host:port or redis://[user:password@]host:port (rediss:// for TLS) seed nodes of a Redis Cluster';
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

export const redisClusterNodes = z.string().transform((text, ctx): RedisClusterTarget => {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  const nodes: Array<{ host: string; port: number }> = [];
  let username: string | undefined;
  let password: string | undefined;
  const schemes = new Set<string>();
  const fail = () => {
    ctx.issues.push({ code: 'custom', message: RULE, input: text });
    return z.NEVER;
  };
  if (items.length === 0 || items.length > 50) return fail();
  for (const item of items) {
    let host: string;
    let port: number;
    if (/^rediss?:\/\//i.test(item)) {
      let url: URL;
      try {
        url = new URL(item);
      } catch {
        return fail();
      }
      schemes.add(url.protocol.toLowerCase());
      host = url.hostname;
      port = url.port ? Number(url.port) : 6379;
      if (url.password && password === undefined) {
        password = decodeURIComponent(url.password);
        username = url.username ? decodeURIComponent(url.username) : undefined;
      }
    } else {
      const match = HOST_PORT.exec(item);
      if (!match) return fail();
      host = match[1] as string;
      port = Number(match[2]);
    }
    if (!host || !(port > 0 && port <= 65535)) return fail();
    nodes.push({ host: host.replace(/^\[|\]$/g, ''), port });
  }
  if (schemes.size > 1) {
    ctx.issues.push({ code: 'custom', message: 'expected every seed node URL to use the same scheme (redis:// or rediss://)', input: text });
    return z.NEVER;
  }
  return { nodes, username, password, tls: schemes.has('rediss:') };
});

/**
 * BullMQ runs Lua scripts over several keys of a queue, which Redis Cluster allows only when they
 * hash to one slot: the prefix must carry a hash tag (`{…}` with something inside), so every key of
 * every queue hashes by it (https://docs.bullmq.io/patterns/redis-cluster).
 */
export function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  if (open < 0) return false;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1;
}

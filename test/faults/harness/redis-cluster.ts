import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { tempDir } from '../../support/config';
import { redisAnswers } from '../../support/redis-server';
import { waitFor } from '../../support/wait';

/**
 * A local Redis Cluster of `size` masters and no replicas, for the Redis Cluster scenario: each node a
 * `redis-server --cluster-enabled yes` child process on a loopback port (its cluster bus on port +
 * 10000), joined with `redis-cli --cluster create`. Like production: `noeviction` and AOF
 * (`appendfsync always`, so a node killed and started again has every acknowledged write, as in
 * scenario 3); no RDB snapshots and no replicas: the scenario is about key placement and a master's
 * restart, not failover.
 */
export interface LocalRedisCluster {
  /** `host:port,host:port,…`: what REDIS_CLUSTER_NODES takes. */
  readonly nodesEnv: string;
  readonly ports: readonly number[];
  /** A cluster client for the scenario's own reads (closed by `stop`). */
  client(): Cluster;
  /** A plain connection to one node (closed by `stop`). */
  node(port: number): Redis;
  /** The port of the master that serves `slot` now (CLUSTER SLOTS). */
  ownerOf(slot: number): Promise<number>;
  /** SIGKILL to one node (a crash); `start(port)` brings it back with its data (AOF) and its slots (nodes-P.conf). */
  kill(port: number): Promise<void>;
  start(port: number): Promise<void>;
  /** SIGTERM to every node (SIGKILL after 5 s), and their directory removed. Safe to call twice. */
  stop(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** `count` ports from `from` on whose cluster bus port (+10000) is free too. */
async function freeClusterPorts(count: number, from: number): Promise<number[]> {
  const ports: number[] = [];
  for (let port = from; ports.length < count && port < from + 900; port++) {
    if ((await portFree(port)) && (await portFree(port + 10_000))) ports.push(port);
  }
  if (ports.length < count) throw new Error(`no ${count} free ports (and bus ports) from ${from}`);
  return ports;
}

const answers = (port: number) => redisAnswers(`redis://127.0.0.1:${port}`);

export async function startRedisCluster(size = 3, fromPort = 7101): Promise<LocalRedisCluster> {
  const ports = await freeClusterPorts(size, fromPort);
  const dir = tempDir('cf-fault-redis-cluster');
  const children = new Map<number, ChildProcess>();
  const opened: Array<Redis | Cluster> = [];
  let stopped = false;
  const killAll = (signal: NodeJS.Signals) => {
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  // A scenario that times out, or a jest worker stopped mid-run, must not leave the nodes behind.
  const onExit = () => killAll('SIGKILL');
  process.once('exit', onExit);
  const spawnNode = (port: number) => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--dir', dir,
        '--cluster-enabled', 'yes',
        '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', '5000',
        '--save', '',
        '--appendonly', 'yes',
        '--appendfilename', `appendonly-${port}.aof`,
        '--appenddirname', `aof-${port}`,
        '--appendfsync', 'always',
        '--maxmemory-policy', 'noeviction',
        '--daemonize', 'no',
      ],
      { stdio: 'ignore' },
    );
    children.set(port, child);
  };
  const cluster: LocalRedisCluster = {
    nodesEnv: ports.map((p) => `127.0.0.1:${p}`).join(','),
    ports,
    client() {
      const client = new Cluster(
        ports.map((port) => ({ host: '127.0.0.1', port })),
        { redisOptions: { maxRetriesPerRequest: null } },
      );
      client.on('error', () => undefined);
      opened.push(client);
      return client;
    },
    node(port) {
      const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      opened.push(client);
      return client;
    },
    async ownerOf(slot) {
      const node = cluster.node(ports[0] as number);
      const slots = (await node.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number, ...unknown[]]]>;
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no master serves slot ${slot}`);
      return Number(range[2][1]);
    },
    async kill(port) {
      const child = children.get(port);
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    async start(port) {
      spawnNode(port);
      await waitFor(() => answers(port), { timeoutMs: 30_000, what: `redis-server (cluster node) on port ${port}` });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of opened) c.disconnect();
      const exits = [...children.values()].map((child) =>
        child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once('exit', () => resolve())),
      );
      killAll('SIGTERM');
      const timer = setTimeout(() => killAll('SIGKILL'), 5_000);
      await Promise.all(exits);
      clearTimeout(timer);
      process.off('exit', onExit);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    for (const port of ports) spawnNode(port);
    await Promise.all(ports.map((port) => waitFor(() => answers(port), { timeoutMs: 30_000, what: `redis-server (cluster node) on port ${port}` })));
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed (${created.status}): ${created.stdout}\n${created.stderr}`);
    // Every node must agree the cluster is up (all 16384 slots served) before a client starts.
    await waitFor(
      async () => {
        for (const port of ports) {
          const node = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
          node.on('error', () => undefined);
          try {
            await node.connect();
            const info = (await node.call('CLUSTER', 'INFO')) as string;
            if (!/cluster_state:ok/.test(info) || !/cluster_known_nodes:(\d+)/.exec(info) || Number(/cluster_known_nodes:(\d+)/.exec(info)?.[1]) !== ports.length) return false;
          } finally {
            node.disconnect();
          }
        }
        return true;
      },
      { timeoutMs: 30_000, what: 'the Redis Cluster to be up on every node' },
    );
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

/** Removes every key under `prefix` from every master of the cluster (SCAN is per node). */
export async function removeClusterKeys(client: Cluster, prefix: string): Promise<void> {
  // The client knows the masters once it has the slot map: after its first answer.
  await client.ping();
  for (const node of client.nodes('master')) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      // One key a call: keys of different slots cannot share a command.
      for (const key of keys) await node.unlink(key);
    } while (cursor !== '0');
  }
}

/** The Redis Cluster hash slot of a key (CRC16/XMODEM of its hash tag, or of the key, mod 16384). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  let part = key;
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) part = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(part, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16_384;
}

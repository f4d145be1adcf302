#!/usr/bin/env node
'use strict';
// Runs before the test suite: the integration tests need a real PostgreSQL and a real Redis. When one
// is missing, say so in one line, with how to get it, before any test runs.
// Plain JavaScript on purpose: it must run before anything is compiled.
const net = require('node:net');

const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

function probe(url, defaultPort) {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(u.port || defaultPort);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok, why) => {
      socket.destroy();
      resolve({ ok, where: `${host}:${port}`, why });
    };
    socket.setTimeout(3000, () => done(false, 'no answer within 3 s'));
    socket.once('connect', () => done(true));
    socket.once('error', (err) => done(false, err.code || err.message));
  });
}

async function main() {
  const [pg, redis] = await Promise.all([probe(databaseUrl, 5432), probe(redisUrl, 6379)]);
  const problems = [];
  if (!pg.ok) problems.push(`PostgreSQL is not reachable at ${pg.where} (${pg.why}): run \`docker compose up -d postgres\` or install your distribution's postgresql package, or set DATABASE_URL`);
  if (!redis.ok) problems.push(`Redis is not reachable at ${redis.where} (${redis.why}): run \`docker compose up -d redis\` or install your distribution's redis-server package, or set REDIS_URL`);
  for (const line of problems) process.stderr.write(`consentflow tests: ${line}\n`);
  process.exit(problems.length ? 1 : 0);
}
main();

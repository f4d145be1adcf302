import type { FastifyInstance } from 'fastify';

/** Listens on a free loopback port, so tests go through real HTTP, not an in-process shortcut. */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no TCP address');
  return `http://127.0.0.1:${address.port}`;
}

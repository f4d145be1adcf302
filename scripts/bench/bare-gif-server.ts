/**
 * The ceiling for pixel ingest: a bare fastify route answering the same 43-byte GIF with the same
 * headers, no validation, no queue. Run as its own process by scripts/bench/ingest.ts.
 */
import Fastify from 'fastify';
import { TRANSPARENT_GIF } from '../../engine/http/routes/pixel';

const port = Number(process.argv[2] ?? 0);
const app = Fastify({ logger: false });
app.get('/t.gif', (_request, reply) =>
  reply
    .header('content-type', 'image/gif')
    .header('cache-control', 'no-cache, no-store, must-revalidate, private')
    .header('pragma', 'no-cache')
    .header('expires', '0')
    .send(TRANSPARENT_GIF),
);
app.listen({ host: '127.0.0.1', port }).then(() => process.stdout.write('ready\n'));
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));

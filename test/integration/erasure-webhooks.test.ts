import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { findProfileId } from '../../engine/identity/lookup';
import { createErasureRequest } from '../../engine/privacy/erasure/request';
import { runErasure } from '../../engine/privacy/erasure/run-erasure';
import { basicAuth, postJson, startTestEngine, type TestEngine } from '../support/engine';
import { rulesLinkingByDefault } from '../support/rules';
import { waitFor } from '../support/wait';

const SECRET = 'processor-shared-secret-0123';

/** A processor's endpoint: a real HTTP server that records what it is sent. */
async function processor(status: number) {
  const received: Array<{ body: string; headers: http.IncomingHttpHeaders }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      received.push({ body, headers: req.headers });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/gdpr/erase`, received, close: () => new Promise((r) => server.close(r)) };
}

describe('erasure informs the processors (GDPR Art. 19)', () => {
  let engine: TestEngine;
  let good: Awaited<ReturnType<typeof processor>>;
  let failing: Awaited<ReturnType<typeof processor>>;
  beforeAll(async () => {
    good = await processor(204);
    failing = await processor(500);
    engine = await startTestEngine({ RULES_DIR: rulesLinkingByDefault(), ERASURE_WEBHOOKS: `${good.url},${failing.url}`, ERASURE_WEBHOOK_SECRET: SECRET }, ['events']);
  }, 60_000);
  afterAll(async () => {
    await engine.stop();
    await good.close();
    await failing.close();
  });

  it('posts a signed request to each, records the answers in the receipt, and does not call again one that answered', async () => {
    await postJson(`${engine.url}/v1/identify`, { userId: 'hook-user', traits: { email: 'hook@example.com' } }, { authorization: basicAuth(engine.writeKey) });
    await waitFor(async () => findProfileId(engine.services.databases.vaultDb, engine.services.keys, [{ userId: 'hook-user' }]), { what: 'the identify stored' });
    const request = await createErasureRequest(engine.services.databases, engine.services.config, engine.services.keys, { identifier: { userId: 'hook-user' }, origin: 'cli', requestedBy: 'test' });
    if (!request.ok) throw new Error(request.error);
    const deps = { ...engine.services };
    // A crash after the webhooks ran (step 5): the retry must not call the processor that answered.
    await expect(runErasure(deps, request.id, { afterStep: (n) => { if (n === 5) throw new Error('crash'); } })).rejects.toThrow('crash');
    const outcome = await runErasure(deps, request.id);
    if (outcome.outcome !== 'completed') throw new Error(outcome.outcome);

    expect(good.received).toHaveLength(1);
    const [call] = good.received;
    // The processor learns whom to erase: the address read from the vault before it was destroyed.
    expect(JSON.parse(call?.body as string)).toEqual({ type: 'erasure_request', request_id: request.id, subject: { email: 'hook@example.com', user_id: 'hook-user', anonymous_id: null } });
    expect(call?.headers['x-consentflow-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(call?.body as string).digest('hex')}`);
    expect(call?.headers['idempotency-key']).toBe(`erasure-${request.id}`);
    // The failing one was tried on the first run only (the retry resumed after step 5).
    expect(failing.received).toHaveLength(1);
    const host = (url: string) => new URL(url).host;
    expect(outcome.receipt.processors).toEqual([
      { host: host(good.url), status: 204, ok: true },
      { host: host(failing.url), status: 500, ok: false },
    ]);
    expect(JSON.stringify(outcome.receipt)).not.toContain('hook@example.com');
    // Decrypting the address to tell the processors is audited, once, without the address.
    const audited = await engine.services.databases.db.selectFrom('app.audit_log').selectAll().where('action', '=', 'erasure.notify_processors').execute();
    expect(audited.map((a) => [a.actor, a.target, a.outcome, a.detail])).toEqual([['worker:erasure', `erasure:${request.id}`, 'failed', { decrypted: true, processors: 2 }]]);
    expect(JSON.stringify(audited)).not.toContain('hook@example.com');
  }, 60_000);
});

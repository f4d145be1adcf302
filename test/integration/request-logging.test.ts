import { buildHttpServer } from '../../engine/http/server';
import { listen } from '../support/http';
import { capturingLogger } from '../support/log-capture';
import { openTestServices } from '../support/services';

const EMAIL = 'jan.kowalski@example.com';

describe('logging in the request path', () => {
  it('never writes an email address that reached a logger, a URL or an error', async () => {
    const capture = capturingLogger('debug');
    const env = await openTestServices({}, capture.log);
    const app = await buildHttpServer(env.services);
    // A route that does everything a careless handler could: log the body, the query, an error.
    app.post('/test/echo', async (request) => {
      request.log.info({ body: request.body, query: request.query }, `received from ${EMAIL}`);
      request.log.info({ email: EMAIL, traits: { email: EMAIL } }, 'traits');
      throw new Error(`cannot process ${EMAIL}`);
    });
    const base = await listen(app);
    try {
      const res = await fetch(`${base}/test/echo?email=${encodeURIComponent(EMAIL)}&raw=${EMAIL}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.77' },
        body: JSON.stringify({ traits: { email: EMAIL, contact: `mailto:${EMAIL}` } }),
      });
      expect(res.status).toBe(500);
      // The response does not echo the internal error either.
      expect(await res.json()).toEqual({ error: { code: 'INTERNAL', message: 'an unexpected error; it was logged' } });
      await fetch(`${base}/missing?email=${EMAIL}`);
      const text = capture.text();
      expect(text).toContain('received from [email]');
      expect(text).toContain('"path":"/test/echo"');
      expect(text).not.toContain('jan.kowalski');
      expect(text).not.toContain('203.0.113.77');
    } finally {
      await app.close();
      await env.close();
    }
  });
});

import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A recording reverse proxy in front of the engine: pages load the kit from it and the kit talks to
 * it, so a test sees every byte the browser sent (beacons sent while a page unloads included, which
 * the browser's own request events miss), and the engine sees the browser's requests unchanged
 * (method, path, Origin, body).
 */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly origin: string | undefined;
  /** The write key the request carries (query `writeKey` or body `writeKey`). */
  readonly writeKey: string | undefined;
  /** The parsed JSON body (text when it is not JSON). */
  readonly body: unknown;
  /** The engine's answer; 0 while it has not answered. */
  readonly status: number;
}

export interface RecordingProxy {
  readonly url: string;
  /** Requests answered so far, in order of arrival. */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://proxy');
      let body: unknown = raw.length > 0 ? raw.toString('utf8') : undefined;
      try {
        body = typeof body === 'string' ? JSON.parse(body) : body;
      } catch {
        // not JSON: kept as text
      }
      const bodyKey = body !== null && typeof body === 'object' ? (body as { writeKey?: unknown }).writeKey : undefined;
      // Recorded as it arrives, before the engine acts on it; its status once the engine answered.
      const recorded: { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] } = {
        method: req.method ?? '',
        path: url.pathname,
        origin: req.headers.origin,
        writeKey: url.searchParams.get('writeKey') ?? (typeof bodyKey === 'string' ? bodyKey : undefined),
        body,
        status: 0,
      };
      requests.push(recorded);
      const forward = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
        (answer) => {
          recorded.status = answer.statusCode ?? 0;
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => res.writeHead(502).end());
      forward.end(raw);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

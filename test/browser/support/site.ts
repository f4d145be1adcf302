import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { kitScript } from '../../../engine/http/kit/asset';

/**
 * A website on its own origin, as a site embedding the kit would be: a plain HTTP server on a
 * loopback port serving the pages a test gives it. The same server is reachable under two origins,
 * `http://localhost:PORT` (the one the test source allows) and `http://127.0.0.1:PORT` (another
 * origin, which it does not). Both are secure contexts (loopback), as a real site's https is.
 */
export interface TestSite {
  readonly allowedOrigin: string;
  readonly otherOrigin: string;
  /** Serves `html` at `path` (replacing what was there). */
  page(path: string, html: string): void;
  close(): Promise<void>;
}

export async function startTestSite(): Promise<TestSite> {
  const pages = new Map<string, string>();
  const server = http.createServer((request, response) => {
    const html = pages.get((request.url ?? '/').split('?')[0] ?? '/');
    if (html === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    allowedOrigin: `http://localhost:${port}`,
    otherOrigin: `http://127.0.0.1:${port}`,
    page: (path, html) => void pages.set(path, html),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ShopPageOptions {
  readonly engineUrl: string;
  readonly writeKey: string;
  /** Extra `data-*` attributes of the script tag, e.g. `{consent: 'auto'}`. */
  readonly data?: Readonly<Record<string, string>>;
  readonly lang?: string;
  readonly body?: string;
}

const attr = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/**
 * A small shop page embedding the kit as the README says: `<script src=…/v1/cf.js integrity=…
 * crossorigin=anonymous async data-write-key=…>`. The integrity is the hash of the file in the
 * repository, so the page only runs the script if the engine serves exactly those bytes.
 */
export function shopPage(options: ShopPageOptions): string {
  const data = Object.entries({ 'write-key': options.writeKey, ...(options.data ?? {}) })
    .map(([name, value]) => ` data-${name}="${attr(value)}"`)
    .join('');
  return `<!doctype html>
<html lang="${options.lang ?? 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test shop</title>
<style>body{font:16px/1.5 sans-serif;margin:0}header,main,footer{padding:1rem 2rem}header{background:#234;color:#fff}</style>
</head>
<body>
<header><p>Test shop</p></header>
<main>
<h1>Welcome to the test shop</h1>
<p>Hand-made mugs and plates.</p>
<p><a href="/other">Another page</a></p>
${options.body ?? ''}
</main>
<footer><p>Test shop footer</p></footer>
<script src="${attr(options.engineUrl)}/v1/cf.js" integrity="${kitScript().integrity}" crossorigin="anonymous" async${data}></script>
</body>
</html>`;
}

import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * Debian's Chromium (package `chromium`, installed by .ci/run when missing), driven by
 * playwright-core: no browser is downloaded. Each `launch` gets a fresh profile: Playwright makes a
 * new temporary user-data-dir per browser and removes it on close, and every test opens its own
 * context (its own storage, cookies and cache).
 */
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where tests keep what a person may want to look at (screenshots); gitignored. */
export const ARTIFACTS_DIR = path.resolve(__dirname, '../../../test-artifacts');

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium), as .ci/run does`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface KitPage {
  readonly context: BrowserContext;
  readonly page: Page;
  close(): Promise<void>;
}

/**
 * A fresh context (its own storage, cookies and cache) and page. `gpc` emulates Global Privacy
 * Control (`navigator.globalPrivacyControl === true`) before any script of the page runs; `locale`
 * is also the browser's Accept-Language; `javaScriptEnabled: false` is a browser with scripts off
 * (Playwright's own evaluate still works in it, the page's scripts do not run).
 */
export async function openKitPage(browser: Browser, options: { gpc?: boolean; locale?: string; javaScriptEnabled?: boolean } = {}): Promise<KitPage> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, locale: options.locale ?? 'en-GB', javaScriptEnabled: options.javaScriptEnabled ?? true });
  if (options.gpc) {
    await context.addInitScript(() => {
      Object.defineProperty((globalThis as unknown as PageGlobals).Navigator.prototype, 'globalPrivacyControl', { get: () => true, configurable: true });
    });
  }
  const page = await context.newPage();
  return { context, page, close: () => context.close() };
}

/** Every key anywhere in a JSON value (nested), to look for identifiers in what was sent. */
export function keysIn(value: unknown): Set<string> {
  const keys = new Set<string>();
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, inner] of Object.entries(v)) {
        keys.add(k);
        walk(inner);
      }
    }
  };
  walk(value);
  return keys;
}

/** What the page keeps on the device: localStorage, sessionStorage and cookies of its origin. */
export async function deviceStorage(kit: KitPage): Promise<{ local: Record<string, string>; session: Record<string, string>; cookies: number }> {
  const storage = await kit.page.evaluate(() => {
    const all = (store: PageGlobals['localStorage']) => {
      const out: Record<string, string> = {};
      for (let i = 0; i < store.length; i++) {
        const key = store.key(i) as string;
        out[key] = store.getItem(key) ?? '';
      }
      return out;
    };
    const g = globalThis as unknown as PageGlobals;
    return { local: all(g.localStorage), session: all(g.sessionStorage) };
  });
  return { ...storage, cookies: (await kit.context.cookies()).length };
}

/**
 * The page's globals as the tests use them inside `page.evaluate` (the project type-checks without
 * the DOM library): `(globalThis as unknown as PageGlobals).cf.flush()`.
 */
export interface PageGlobals {
  readonly cf: {
    readonly version: string;
    page(name?: string, properties?: object): void;
    track(event: string, properties?: object): void;
    identify(userId: string, traits?: object): void;
    flush(): void;
    readonly consent: { show(): Promise<void>; hide(): void; get(): unknown };
  };
  readonly navigator: { readonly globalPrivacyControl?: boolean };
  readonly localStorage: { getItem(key: string): string | null; readonly length: number; key(index: number): string | null };
  readonly sessionStorage: { getItem(key: string): string | null; readonly length: number; key(index: number): string | null };
  readonly Navigator: { readonly prototype: object };
  fetch(url: string, init?: object): Promise<{ readonly status: number }>;
}

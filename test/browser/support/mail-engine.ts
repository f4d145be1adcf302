import fs from 'node:fs';
import net from 'node:net';
import type { Browser, Locator, Page } from 'playwright-core';
import type { QueueName } from '../../../engine/queues/catalog';
import { startTestEngine, type TestEngine } from '../../support/engine';
import { type ReceivedMessage, startTestSmtpServer, type TestSmtpServer } from '../../support/smtp-server';
import { waitFor } from '../../support/wait';
import { ARTIFACTS_DIR, launchChromium } from './browser';

/**
 * What every browser test of the pages people open from emails starts with: a real SMTP server
 * (the engine's relay), the engine (API and the workers asked for) whose PUBLIC_URL is its own
 * address, so the links in the emails it sends open in the browser as they are, and Chromium.
 */
export interface MailEngine {
  readonly engine: TestEngine;
  readonly smtp: TestSmtpServer;
  readonly browser: Browser;
  close(): Promise<void>;
}

/** A free loopback port, for an engine that must know its own address before it listens. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startMailEngine(
  options: { readonly env?: Record<string, string | undefined>; readonly queues?: readonly QueueName[] } = {},
): Promise<MailEngine> {
  const smtp = await startTestSmtpServer();
  const port = await freePort();
  const [engine, browser] = await Promise.allSettled([
    startTestEngine({ SMTP_URL: smtp.url, HTTP_PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, ...options.env }, options.queues ?? ['events', 'email']),
    launchChromium(),
  ]);
  const close = async () => {
    if (browser.status === 'fulfilled') await browser.value.close();
    if (engine.status === 'fulfilled') await engine.value.stop();
    await smtp.close();
  };
  if (engine.status === 'rejected' || browser.status === 'rejected') {
    await close();
    throw engine.status === 'rejected' ? engine.reason : (browser as PromiseRejectedResult).reason;
  }
  fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return { engine: engine.value, smtp, browser: browser.value, close };
}

/** The first email to `to` whose subject starts with `subject`, waiting for it to arrive. */
export function waitForMail(smtp: TestSmtpServer, to: string, subject: string, timeoutMs = 20_000): Promise<ReceivedMessage> {
  return waitFor(() => smtp.messages.find((m) => m.to.includes(to) && m.subject.startsWith(subject)), {
    what: `the email "${subject}" to ${to} (received: ${smtp.messages.map((m) => m.subject).join(' | ')})`,
    timeoutMs,
  });
}

const LINKS = {
  confirm: /https?:\/\/[^\s"<>]+\/v1\/consent\/confirm\?token=[A-Za-z0-9_.-]+/,
  preferences: /https?:\/\/[^\s"<>]+\/p\/[A-Za-z0-9_.-]+/,
  unsubscribe: /https?:\/\/[^\s"<>]+\/u\/[A-Za-z0-9_.-]+/,
  forget: /https?:\/\/[^\s"<>]+\/f\/[A-Za-z0-9_.-]+/,
} as const;

/** The link of that kind in the email's text, as the person would open it. */
export function linkIn(mail: ReceivedMessage, kind: keyof typeof LINKS): string {
  const link = LINKS[kind].exec(mail.text)?.[0];
  if (!link) throw new Error(`no ${kind} link in the email "${mail.subject}":\n${mail.text}`);
  return link;
}

/** Every request the page makes from now on whose origin is not `origin`: a page that loads nothing from elsewhere keeps it empty. */
export function requestsElsewhere(page: Page, origin: string): { readonly all: string[]; readonly elsewhere: () => string[] } {
  const all: string[] = [];
  page.on('request', (request) => all.push(request.url()));
  return { all, elsewhere: () => all.filter((url) => new URL(url).origin !== origin) };
}

/** Presses Tab until `target` has the focus (from wherever the focus is), as a keyboard user gets to a control. */
export async function tabTo(page: Page, target: Locator, maxPresses = 25): Promise<number> {
  for (let presses = 1; presses <= maxPresses; presses++) {
    await page.keyboard.press('Tab');
    if (await target.evaluate((el) => el === (el.ownerDocument as unknown as { activeElement: unknown }).activeElement)) return presses;
  }
  throw new Error(`${maxPresses} presses of Tab never reached ${target.toString()}`);
}

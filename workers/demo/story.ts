import { randomBytes } from 'node:crypto';
import { createApiKey, revokeApiKey } from '../../engine/auth/api-keys';
import type { Services } from '../../engine/runtime/services';
import { type OutboxMessage, unsubscribeUrl } from './eml';
import { DemoStepError, Observer, until } from './observe';

export interface StoryContext {
  readonly services: Services;
  /** Where the engine's API listens (PUBLIC_URL too: the emails' links lead here). */
  readonly url: string;
  /** The write key of the demo's tracking source (made before the API started, so it knows it at once). */
  readonly writeKey: string;
  readonly outboxDir: string;
  /** The visitor's address: a fresh data dir gets ann@example.com. */
  readonly email: string;
  readonly say: (line: string) => void;
}

export interface Step {
  readonly title: string;
  readonly run: () => Promise<void>;
}

/** Quiet hours of the shipped welcome series are 21:00–08:00 in the person's zone: pick one where it is day. */
export function daytimeZone(now = new Date()): { zone: string; local: string } {
  const zones = ['Europe/Warsaw', 'America/New_York', 'America/Los_Angeles', 'Asia/Tokyo', 'Asia/Kolkata', 'Australia/Sydney', 'Pacific/Auckland'];
  for (const zone of zones) {
    const local = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(now);
    const hour = Number(local.slice(0, 2));
    if (hour >= 9 && hour < 20) return { zone, local };
  }
  return { zone: 'Europe/Warsaw', local: '?' };
}

async function call(method: 'GET' | 'POST', url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const response = await fetch(url, {
    method,
    headers: { ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: response.status, text: await response.text() };
}

function expectStatus(what: string, got: { status: number; text: string }, ...wanted: number[]): void {
  if (!wanted.includes(got.status)) throw new DemoStepError(`${what} answered ${got.status}, expected ${wanted.join(' or ')}: ${got.text.slice(0, 300)}`);
}

/** The consent API's answer in one line: each purpose's state. */
function consentAnswer(text: string): string {
  const body = JSON.parse(text) as { consent?: Record<string, { state: string; pendingConfirmation?: boolean }> };
  return Object.entries(body.consent ?? {})
    .map(([purpose, c]) => `${purpose}: ${c.state}${c.pendingConfirmation ? ' (confirmation pending)' : ''}`)
    .join(', ');
}

/** The scripted story, step by step: each acts through the real HTTP API and shows what the engine did. */
export function story(ctx: StoryContext): { steps: Step[]; receipt: () => Record<string, unknown> | undefined } {
  const { services, url, say, email } = ctx;
  const db = services.databases.db;
  const observe = new Observer(services, ctx.outboxDir, say);
  const anonymousId = `demo-${randomBytes(6).toString('hex')}`;
  const { zone, local } = daytimeZone();
  const { writeKey } = ctx;
  let profileId = '';
  let lastMail: OutboxMessage | undefined;
  let receipt: Record<string, unknown> | undefined;
  const auth = () => ({ authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` });
  const api = async (path: string, body: unknown, ...wanted: number[]) => {
    const got = await call('POST', `${url}${path}`, body, auth());
    expectStatus(`POST ${path}`, got, ...(wanted.length ? wanted : [200]));
    say(`   → POST ${path}: ${got.status}`);
    return got;
  };
  const person = async () => {
    profileId = await until(() => observe.profileId([{ email }, { anonymousId }]), 'the visitor\'s profile');
    return profileId;
  };

  const steps: Step[] = [
    {
      title: 'An anonymous visitor browses the website (no consent yet)',
      run: async () => {
        say(`   the tracking source "demo website" (write key ${writeKey.slice(0, 8)}…) was made before the API started`);
        const before = await observe.anonymousCount('page');
        const pixel = await call('GET', `${url}/t.gif?wk=${encodeURIComponent(writeKey)}&t=page&aid=${anonymousId}&title=Home`, undefined);
        expectStatus('GET /t.gif', pixel, 200);
        say(`   → GET /t.gif?t=page&aid=${anonymousId}: ${pixel.status} (the 43-byte pixel)`);
        await until(async () => (await observe.anonymousCount('page')) > before, 'the page view to be counted');
        const profile = await observe.profileId([{ anonymousId }]);
        const stored = profile ? await observe.storedEvents(profile) : 0;
        say(`   stored: +1 to the anonymous count of page views of the day (app.event_counts); events kept on a profile: ${stored}`);
        if (stored > 0) throw new DemoStepError(`the page view was stored on profile ${profile} before any consent`);
        say('   why: rules/purposes.yaml asks consent for `analytics` (link_events_to_profile) before a visit is tied to anyone');
      },
    },
    {
      title: 'The visitor accepts the cookie banner',
      run: async () => {
        const got = await api('/v1/consent', { anonymousId, grant: ['analytics', 'profiling'], notice: { id: 'cookie_banner', version: 2 }, method: 'banner' });
        say(`   answer: ${consentAnswer(got.text)}`);
        await api('/v1/page', { anonymousId, name: 'Home', properties: { path: '/' } });
        await api('/v1/identify', { anonymousId, traits: { firstName: 'Ann', timezone: zone } });
        await person();
        await until(async () => (await observe.storedEvents(profileId)) >= 2, 'the page view and identify stored on the profile');
        say(`   profile ${profileId}: ${await observe.storedEvents(profileId)} events stored; consent: ${await observe.consent(profileId)}`);
        say(`   traits: timezone ${zone} (it is ${local} there; the welcome series keeps quiet hours 21:00–08:00 in the person's zone); firstName only in the encrypted vault`);
      },
    },
    {
      title: 'She signs up to the newsletter (double opt-in)',
      run: async () => {
        const got = await api('/v1/consent', { anonymousId, email, grant: ['email_marketing'], notice: { id: 'newsletter_form', version: 1 }, method: 'double_opt_in' }, 202);
        say(`   answer: ${consentAnswer(got.text)}`);
        say('   why 202: rules/purposes.yaml marks email_marketing `double_opt_in: true`, so nothing is granted until she confirms');
        lastMail = await observe.awaitMail(email, /confirm your subscription/i, 'the confirmation email');
      },
    },
    {
      title: 'She confirms by the link in the email',
      run: async () => {
        const link = /(https?:\/\/\S+\/v1\/consent\/confirm\?token=[A-Za-z0-9_.-]+)/.exec(lastMail?.text ?? '')?.[1];
        if (!link) throw new DemoStepError(`no confirmation link in ${lastMail?.file}`);
        const page = await call('GET', link, undefined);
        expectStatus('GET /v1/consent/confirm', page, 200);
        say(`   → GET /v1/consent/confirm?token=…: ${page.status} (a page with a "Yes, subscribe me" button; a GET changes nothing)`);
        const token = /name="token" value="([^"]+)"/.exec(page.text)?.[1];
        if (!token) throw new DemoStepError('the confirmation page has no form with the token');
        const confirmed = await call('POST', `${url}/v1/consent/confirm`, new URLSearchParams({ token }).toString(), {
          'content-type': 'application/x-www-form-urlencoded',
          'sec-fetch-site': 'same-origin',
        });
        expectStatus('POST /v1/consent/confirm', confirmed, 200);
        say(`   → POST /v1/consent/confirm (the button, Sec-Fetch-Site: same-origin): ${confirmed.status}, "${/<p class="notice">([^<]*)/.exec(confirmed.text)?.[1] ?? ''}"`);
        await until(async () => (await observe.segments(profileId)).includes('newsletter_subscribers'), 'the newsletter_subscribers segment');
        say(`   consent: ${await observe.consent(profileId)}`);
        say(`   segments: ${(await observe.segments(profileId)).join(', ')} (rules/segments/newsletter_subscribers.yaml: consent email_marketing)`);
      },
    },
    {
      title: 'The welcome email goes out (rules/campaigns/welcome_series.yaml)',
      run: async () => {
        await observe.awaitDecision(profileId, /^campaign:welcome_series:/, 'the welcome series to decide');
        lastMail = await observe.awaitMail(email, /^Welcome/, 'the welcome email');
        say(`   List-Unsubscribe: ${lastMail.header('list-unsubscribe')}`);
        say('   next in the series: wait 2d, then `tips` if she is in engaged_readers, else `getting_started`');
      },
    },
    {
      title: 'She becomes an engaged reader (three "Article Read" events)',
      run: async () => {
        for (const n of [1, 2, 3]) await api('/v1/track', { anonymousId, event: 'Article Read', properties: { article: `article-${n}` } });
        await until(async () => (await observe.segments(profileId)).includes('engaged_readers'), 'the engaged_readers segment', 30_000);
        say(`   segments: ${(await observe.segments(profileId)).join(', ')}`);
        say('   why: rules/segments/engaged_readers.yaml: consent to profiling and at least 3 Article Read within 14d');
        await observe.showDecisions(profileId);
      },
    },
    {
      title: 'The weekly digest broadcast (rules/campaigns/weekly_digest.yaml)',
      run: async () => {
        say('   its cron is "0 9 * * 1" (Mondays 09:00 Europe/Warsaw): the demo does not wait for Monday, it queues one tick now');
        // One tick enrols a segment once (app.broadcast_ticks); in a data dir an earlier demo used, that tick was this demo's own.
        const replayed = await db.deleteFrom('app.broadcast_ticks').where('campaign_id', '=', 'weekly_digest').executeTakeFirst();
        if (replayed.numDeletedRows > 0n) say('   (this data dir had the tick from an earlier demo run: the demo forgot it, so the tick runs again)');
        await services.queues.enqueue('broadcasts', 'tick', { campaignId: 'weekly_digest' });
        await observe.awaitDecision(profileId, /^campaign:weekly_digest:/, 'the broadcast to decide');
        lastMail = await observe.awaitMail(email, /digest/i, 'the weekly digest');
      },
    },
    {
      title: 'She unsubscribes with one click (RFC 8058)',
      run: async () => {
        const link = lastMail ? unsubscribeUrl(lastMail) : undefined;
        if (!link) throw new DemoStepError(`no http List-Unsubscribe in ${lastMail?.file}`);
        say(`   List-Unsubscribe-Post: ${lastMail?.header('list-unsubscribe-post')}`);
        const got = await call('POST', link, 'List-Unsubscribe=One-Click', { 'content-type': 'application/x-www-form-urlencoded' });
        expectStatus('POST /u/…', got, 200);
        say(`   → POST ${new URL(link).pathname.slice(0, 12)}… List-Unsubscribe=One-Click: ${got.status}`);
        await until(async () => !(await observe.segments(profileId)).includes('newsletter_subscribers'), 'her leaving newsletter_subscribers');
        say(`   consent: ${await observe.consent(profileId)}`);
        say(`   segments: ${(await observe.segments(profileId)).join(', ') || 'none'} (no more campaign email: every send re-checks consent)`);
        await observe.showDecisions(profileId);
      },
    },
    {
      title: 'She asks to be forgotten (GDPR Art. 17)',
      run: async () => {
        const officer = await createApiKey(db, { role: 'privacy_officer', name: 'consentflow demo' });
        say(`   a privacy_officer API key was created for the demo (${officer.prefix}…)`);
        const requested = await call('POST', `${url}/admin/v1/subjects/erase`, { email }, { authorization: `Bearer ${officer.key}` });
        expectStatus('POST /admin/v1/subjects/erase', requested, 202);
        const id = (JSON.parse(requested.text) as { id: string }).id;
        say(`   → POST /admin/v1/subjects/erase: 202, request ${id}; the erasure worker takes it`);
        const status = await until(async () => {
          const got = await call('GET', `${url}/admin/v1/erasures/${id}`, undefined, { authorization: `Bearer ${officer.key}` });
          const body = JSON.parse(got.text) as { state?: string; step?: number; receipt?: Record<string, unknown>; signatureValid?: boolean };
          return body.state === 'completed' ? body : undefined;
        }, 'the erasure to complete', 45_000);
        await revokeApiKey(db, officer.id);
        receipt = status.receipt;
        say(`   completed (step ${status.step} of 8); receipt signature ${status.signatureValid ? 'valid' : 'INVALID'}`);
        const left = await observe.profileId([{ email }, { anonymousId }]);
        say(`   look-up by her email and anonymous id now: ${left ?? 'nobody'}`);
        const clean = (receipt?.verification as { clean?: unknown } | undefined)?.clean;
        if (clean !== true || !status.signatureValid || left) throw new DemoStepError(`the erasure is not verified clean: ${JSON.stringify(status)}`);
      },
    },
  ];
  return { steps, receipt: () => receipt };
}

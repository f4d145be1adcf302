import { randomUUID } from 'node:crypto';
import { runAutomationIsolated } from '../automation/isolated';
import type { AutomationDeps } from '../automation/run-automation';
import { decide } from '../consent/gate';
import { consentOf } from '../consent/ledger';
import { signLink } from '../consent/links';
import type { PurposeCatalog } from '../consent/purposes';
import { lockProfileRows } from '../db/profile-locks';
import type { Db } from '../db/types';
import type { EventPartitions } from '../events/partitions';
import { scrubUrl } from '../privacy/scrub-text';

/**
 * Opens and clicks. Added to a message only while the person's consent allows tying behaviour to
 * them (a purpose allowing link_events_to_profile, shipped: analytics); they come back as
 * `Email Opened` / `Email Clicked` events of the person, which may trigger rules but never decide
 * consent or erasure. A click's destination is inside the signed token: no open redirect.
 */

/** The source the engine's own email events carry (migration 0005): every datum has a source. */
export const EMAIL_TRACKING_SOURCE = '00000000-0000-4000-8000-00000000e3a1';

export async function trackingAllowed(db: Db, catalog: PurposeCatalog, profileId: string): Promise<boolean> {
  return decide(catalog, await consentOf(db, profileId), { capability: 'link_events_to_profile' }).allowed;
}

/**
 * Rewrites the message's http(s) links to `/c/TOKEN` (except the unsubscribe and preferences links,
 * which must work as they are) and adds the open pixel.
 */
export function addTracking(html: string, publicUrl: string, key: Buffer, sendId: string, keep: readonly string[]): string {
  const rewritten = html.replace(/href="(https?:\/\/[^"]+)"/g, (whole, url: string) => {
    const target = url.replace(/&amp;/g, '&');
    if (keep.includes(target) || target.startsWith(`${publicUrl}/`)) return whole;
    return `href="${publicUrl}/c/${signLink(key, 'click', { s: sendId, u: target })}"`;
  });
  const pixel = `<img src="${publicUrl}/o/${signLink(key, 'open', { s: sendId })}.gif" width="1" height="1" alt="" style="display:block;border:0;">`;
  return rewritten.includes('</body>') ? rewritten.replace('</body>', `${pixel}</body>`) : `${rewritten}${pixel}`;
}

export interface TrackingDeps {
  readonly db: Db;
  readonly partitions: EventPartitions;
  readonly automation: AutomationDeps;
}

/**
 * Records an open or a click as the person's event (when the send and the person still exist and
 * their consent still allows it), and lets the rules react to it (wait_until, triggers).
 */
export async function recordEmailEvent(deps: TrackingDeps, sendId: string, kind: 'Email Opened' | 'Email Clicked', url?: string): Promise<boolean> {
  const send = await deps.db.selectFrom('app.scheduled_sends').select(['profile_id', 'campaign_id', 'template']).where('id', '=', sendId).executeTakeFirst();
  if (!send) return false;
  if (!(await trackingAllowed(deps.db, deps.automation.catalog, send.profile_id))) return false;
  const now = new Date();
  await deps.partitions.ensure([now]);
  const properties: Record<string, unknown> = { campaign: send.campaign_id, template: send.template, send_id: sendId, ...(url ? { url: scrubUrl(url).slice(0, 500) } : {}) };
  await deps.db.transaction().execute(async (trx) => {
    await lockProfileRows(trx, [send.profile_id]);
    await trx
      .insertInto('app.events')
      .values({
        profile_id: send.profile_id,
        source_id: EMAIL_TRACKING_SOURCE,
        message_id: `${kind === 'Email Opened' ? 'open' : 'click'}-${sendId}-${randomUUID()}`,
        type: 'track',
        name: kind,
        occurred_at: now,
        received_at: now,
        properties: JSON.stringify(properties),
        context: JSON.stringify({}),
      })
      .execute();
    await runAutomationIsolated(trx, deps.automation, [{ profileId: send.profile_id, events: [{ type: 'track', name: kind, properties, occurredAt: now }] }], now);
  });
  return true;
}

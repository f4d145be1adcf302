import { durationMs } from '../../schemas/rules/conditions';
import { decide } from '../consent/gate';
import type { Person, ScheduledSend } from './simulate-person';
import type { World } from './simulate-world';

/**
 * A scheduled send when it is due, as the email worker would make it: consent and the frequency cap
 * are checked again at send time (a withdrawal wins over anything already scheduled).
 */
export function deliver(world: World, p: Person, send: ScheduledSend): void {
  if (send.status !== 'scheduled') return;
  const campaign = world.compiled.campaigns.get(send.campaignId);
  if (!campaign) return;
  const base = { person: p.key, campaign: send.campaignId, step: send.stepId, template: send.template };
  const gate = decide(world.catalog, p.consent, { purposes: campaign.file.purposes });
  if (!gate.allowed) {
    send.status = 'skipped';
    world.record({ ...base, kind: 'skipped', reason: `at send time: ${gate.reason}` });
    return;
  }
  const cap = campaign.file.limits.frequency_cap;
  if (cap) {
    const since = world.now - durationMs(cap.per);
    const count = p.sends.filter((s) => s.status === 'sent' && s.at.getTime() > since && s.at.getTime() <= world.now).length;
    if (count >= cap.max) {
      send.status = 'skipped';
      world.record({ ...base, kind: 'skipped', reason: `at send time: frequency cap: ${count} ${cap.channel} sends in the last ${cap.per}, at most ${cap.max}` });
      return;
    }
  }
  send.status = 'sent';
  const reason = send.deferredFrom ? `due ${send.deferredFrom.toISOString()}, ${send.reason ?? 'deferred'}` : 'sent';
  world.record({ ...base, kind: 'send', reason });
}

import { decide } from '../consent/gate';
import type { CompiledCampaign } from './compile';
import type { TriggerDecision } from './evaluate';
import { advance, type BroadcastStart, type JourneyAction, type JourneyResult, startJourney } from './journey';
import { type Journey, journeyKey, type Person, type ScheduledSend } from './simulate-person';
import { deliver } from './simulate-send';
import type { World } from './simulate-world';

/**
 * Journeys in the simulation: enrolling on the evaluator's trigger decisions, performing the
 * actions the step machine returns (sends, skips, traits, segment changes, wake-ups), and ending
 * them, from inside (last step, `end`) or outside (exit event or condition).
 */

/** Enrols the person on each `enrol` decision and runs the journey's first steps; records each skip. */
export function enrol(world: World, p: Person, decisions: readonly TriggerDecision[], start?: BroadcastStart): void {
  for (const d of decisions) {
    const campaign = world.compiled.campaigns.get(d.campaignId);
    if (!campaign) continue;
    if (d.outcome === 'skip' || d.entry === undefined) {
      world.record({ person: p.key, kind: 'skipped', campaign: d.campaignId, reason: d.reason });
      continue;
    }
    p.enrolments.push({ campaignId: d.campaignId, entry: d.entry, startedAt: world.at, active: true });
    world.record({ person: p.key, kind: 'enrolled', campaign: d.campaignId, reason: start ? `${d.reason} ${start.reason}` : d.reason });
    const startAt = start?.at ?? world.at;
    const journey: Journey = { state: startJourney(d.campaignId, d.entry, startAt), generation: 0 };
    p.journeys.set(journeyKey(d.campaignId, d.entry), journey);
    const input = { kind: 'start' as const, at: startAt, ...(start ? { now: world.at } : {}) };
    apply(world, p, campaign, journey, advance(campaign, journey.state, input, world.snapshot(p), world.context(p)));
  }
}

/** Takes the step machine's result: the journey's next state and its actions. */
export function apply(world: World, p: Person, campaign: CompiledCampaign, journey: Journey, result: JourneyResult): void {
  journey.generation++;
  if (result.state) journey.state = result.state;
  let changed = false;
  for (const action of result.actions) changed = act(world, p, campaign, journey, action) || changed;
  if (changed) world.recheck(p, world.now);
}

/** Performs one action; true when it changed what segments see. */
function act(world: World, p: Person, campaign: CompiledCampaign, journey: Journey, action: JourneyAction): boolean {
  const base = { person: p.key, campaign: campaign.id };
  switch (action.kind) {
    case 'send': {
      const send: ScheduledSend = {
        id: world.sendIds++,
        campaignId: campaign.id,
        entry: journey.state.entry,
        stepId: action.stepId,
        template: action.template,
        at: action.at,
        ...(action.deferredFrom ? { deferredFrom: action.deferredFrom } : {}),
        ...(action.reason ? { reason: action.reason } : {}),
        status: 'scheduled',
      };
      p.sends.push(send);
      if (action.deferredFrom) world.record({ ...base, kind: 'deferred', step: action.stepId, template: action.template, reason: action.reason ?? `deferred to ${action.at.toISOString()}` });
      if (action.at.getTime() <= world.now) deliver(world, p, send);
      else world.agenda.push(action.at.getTime(), { kind: 'send', person: p.key, send });
      return false;
    }
    case 'skip':
      world.record({ ...base, kind: 'skipped', step: action.stepId, reason: action.reason });
      return false;
    case 'set_trait':
      p.traits[action.name] = action.value;
      world.record({ ...base, kind: 'trait_set', step: action.stepId, reason: `${action.name} = ${JSON.stringify(action.value)}` });
      return true;
    case 'add_to_segment':
    case 'remove_from_segment': {
      const adding = action.kind === 'add_to_segment';
      if (adding) {
        const gate = decide(world.catalog, p.consent, { capability: 'build_segments' });
        if (!gate.allowed) {
          world.record({ ...base, kind: 'skipped', step: action.stepId, segment: action.segmentId, reason: `no consent to build segments: ${gate.reason}` });
          return false;
        }
      }
      if (p.segments.has(action.segmentId) === adding) return false;
      if (adding) p.segments.add(action.segmentId);
      else p.segments.delete(action.segmentId);
      world.record({ ...base, kind: adding ? 'segment_entered' : 'segment_left', step: action.stepId, segment: action.segmentId, reason: `${adding ? 'added' : 'removed'} by step ${action.stepId} of ${campaign.id}` });
      world.agenda.push(world.now, { kind: 'segment_change', person: p.key, segmentId: action.segmentId, change: adding ? 'entered' : 'left' });
      return true;
    }
    case 'wake':
      world.agenda.push(action.at.getTime(), { kind: 'journey', person: p.key, campaignId: campaign.id, entry: journey.state.entry, generation: journey.generation });
      return false;
    case 'finished': {
      end(p, campaign.id, journey.state.entry);
      const reason = action.how === 'ended' ? `ended: ${action.reason}` : action.reason;
      world.record({ ...base, kind: action.how === 'exited' ? 'exited' : 'completed', reason });
      return false;
    }
  }
}

function end(p: Person, campaignId: string, entry: number): void {
  p.journeys.delete(journeyKey(campaignId, entry));
  for (const e of p.enrolments) if (e.campaignId === campaignId && e.entry === entry) e.active = false;
}

/** Ends the campaign's journeys from outside (exit event or condition, consent) and cancels what they scheduled. */
export function exit(world: World, p: Person, campaignId: string, reason: string): void {
  for (const journey of world.journeysOf(p, campaignId)) {
    const cancelled: string[] = [];
    const waiting = journey.state.waiting;
    for (const s of p.sends) {
      if (s.campaignId !== campaignId || s.entry !== journey.state.entry || s.status !== 'scheduled') continue;
      s.status = 'cancelled';
      cancelled.push(`send ${s.template} at ${s.at.toISOString()}`);
    }
    if (waiting?.kind === 'wait' && cancelled.length === 0) cancelled.push(`wait until ${waiting.until.toISOString()}`);
    if (waiting?.kind === 'wait_until') cancelled.push(`wait for ${waiting.match.name ?? `any ${waiting.match.type}`} until ${waiting.timeoutAt.toISOString()}`);
    end(p, campaignId, journey.state.entry);
    world.record({ person: p.key, kind: 'exited', campaign: campaignId, reason: cancelled.length > 0 ? `${reason}; cancelled ${cancelled.join(', ')}` : reason });
  }
}

import type { CampaignFile, Step } from '../../schemas/rules/campaign-file';
import { durationMs, type EventMatch } from '../../schemas/rules/conditions';
import type { PurposeCatalog } from '../consent/purposes';
import { type CompiledCampaign, type StepPath, stepPathKey } from './compile';
import { compileEventMatch, describeEventMatch, type ProfileSnapshot, type SnapshotEvent } from './conditions';

/**
 * The step machine of one enrolment: from where the journey stands and what just happened (it
 * started, a timer fired, an event arrived), the actions to take and where it stands next. Pure: the
 * caller stores the state, schedules the wake-ups and performs the actions.
 */

export type Waiting =
  | { readonly kind: 'wait'; readonly until: Date }
  | { readonly kind: 'wait_until'; readonly match: EventMatch; readonly timeoutAt: Date };

export interface JourneyState {
  readonly campaignId: string;
  readonly entry: number;
  /** With `waiting`: the step waited on (the journey goes on after it). Without: the next step to run. */
  readonly cursor: StepPath;
  readonly waiting?: Waiting;
  readonly startedAt: Date;
}

export type JourneyInput =
  /**
   * `at`: when the steps begin. `now`, when given and earlier, is the moment the journey is started
   * (a broadcast in each person's zone enrols at the tick and begins at the person's time): a send
   * due after it keeps the journey waiting until it goes out, as a send deferred by quiet hours
   * does, so that an exit meanwhile still ends the journey and cancels the send.
   */
  | { readonly kind: 'start'; readonly at: Date; readonly now?: Date }
  | { readonly kind: 'timer'; readonly at: Date }
  | { readonly kind: 'event'; readonly at: Date; readonly event: SnapshotEvent };

export type JourneyAction =
  | { readonly kind: 'send'; readonly template: string; readonly stepId: string; readonly at: Date; readonly deferredFrom?: Date; readonly reason?: string }
  | { readonly kind: 'skip'; readonly stepId: string; readonly reason: string }
  | { readonly kind: 'set_trait'; readonly stepId: string; readonly name: string; readonly value: string | number | boolean }
  | { readonly kind: 'add_to_segment' | 'remove_from_segment'; readonly stepId: string; readonly segmentId: string }
  | { readonly kind: 'wake'; readonly at: Date }
  | { readonly kind: 'finished'; readonly how: 'completed' | 'exited' | 'ended'; readonly reason: string };

export type QuietHours = NonNullable<CampaignFile['limits']['quiet_hours']>;

export interface JourneyContext {
  /** For branch conditions on consent. */
  readonly catalog: PurposeCatalog;
  /** Quiet hours for campaigns whose limits set none (an operator default); the campaign's own win. */
  readonly quietHours?: QuietHours | null;
  /** Sends of the channel to this person at or after `since`, across campaigns, scheduled ones included. */
  readonly sendsInWindow: (channel: 'email', since: Date) => number;
}

export interface JourneyResult {
  /** null once the journey is over (the last action is then `finished`). */
  readonly state: JourneyState | null;
  readonly actions: JourneyAction[];
}

export function startJourney(campaignId: string, entry: number, startedAt: Date): JourneyState {
  return { campaignId, entry, cursor: [0], startedAt };
}

// ── local time ──────────────────────────────────────────────────────────────────────────────────

const formatters = new Map<string, Intl.DateTimeFormat | null>();

function formatter(zone: string): Intl.DateTimeFormat | null {
  let f = formatters.get(zone);
  if (f === undefined) {
    try {
      const numeric = 'numeric' as const;
      f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: numeric, month: numeric, day: numeric, hour: numeric, minute: numeric, second: numeric });
    } catch {
      f = null;
    }
    formatters.set(zone, f);
  }
  return f;
}

export function isTimeZone(zone: string | undefined): zone is string {
  return zone !== undefined && formatter(zone) !== null;
}

interface Wall {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function wall(at: number, zone: string): Wall {
  const parts: Record<string, number> = {};
  for (const p of (formatter(zone) as Intl.DateTimeFormat).formatToParts(at)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year ?? 0, month: parts.month ?? 1, day: parts.day ?? 1, hour: parts.hour ?? 0, minute: parts.minute ?? 0, second: parts.second ?? 0 };
}

/** The local wall time as if it were UTC, in ms (seconds precision). */
function wallMs(at: number, zone: string): number {
  const w = wall(at, zone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
}

const DAY_MS = 86_400_000;

/**
 * The first instant after `after` at which the local time in `zone` reaches `minutes` past midnight
 * on the given local date: the later instant's offset and the earlier one's are both tried, since a
 * DST change may fall that day; where the time does not exist (clocks jump forward over it), the
 * instant of the jump.
 */
function localInstant(year: number, month: number, day: number, minutes: number, zone: string, after: number): number {
  const target = Date.UTC(year, month - 1, day, 0, minutes);
  const offsets = [wallMs(target - DAY_MS, zone) - (target - DAY_MS), wallMs(target + DAY_MS, zone) - (target + DAY_MS)];
  const candidates = [...new Set(offsets.map((o) => target - o))].sort((a, b) => a - b);
  const exact = candidates.filter((c) => wallMs(c, zone) === target && c > after);
  if (exact.length > 0) return exact[0] as number;
  // A gap: the wall clock passes from before the target to after it; find the jump to the minute.
  let lo = candidates[0] as number;
  let hi = candidates[candidates.length - 1] as number;
  if (wallMs(hi, zone) < target || wallMs(lo, zone) >= target) return Math.max(hi, after + 1);
  while (hi - lo > 60_000) {
    const mid = lo + Math.floor((hi - lo) / 120_000) * 60_000;
    if (wallMs(mid, zone) >= target) hi = mid;
    else lo = mid;
  }
  return hi;
}

const minutesOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * When a send at `at` falls inside the quiet hours [from, to) in `zone`, the end of that window;
 * otherwise null. A window with from > to runs over midnight (21:00–08:00).
 */
export function quietHoursEnd(at: Date, quiet: Pick<QuietHours, 'from' | 'to'>, zone: string): Date | null {
  const from = minutesOf(quiet.from);
  const to = minutesOf(quiet.to);
  if (from === to) return null;
  const local = wall(at.getTime(), zone);
  const m = local.hour * 60 + local.minute;
  const overMidnight = from > to;
  const inside = overMidnight ? m >= from || m < to : m >= from && m < to;
  if (!inside) return null;
  // The window that started this evening ends tomorrow morning.
  const date = new Date(Date.UTC(local.year, local.month - 1, local.day + (overMidnight && m >= from ? 1 : 0)));
  return new Date(localInstant(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), to, zone, at.getTime()));
}

// ── broadcasts in each person's zone ────────────────────────────────────────────────────────────

/**
 * The earliest zone on Earth, UTC+14 (Kiribati's Line Islands; `Etc/` names carry the POSIX sign,
 * inverted): a wall time comes there first, so a broadcast in each person's zone ticks in it and
 * nobody's local time has passed yet when it does.
 */
export const EARLIEST_TIME_ZONE = 'Etc/GMT-14';

/**
 * The first instant, not before `at`, at which the wall clock in `toZone` shows the date, hour and
 * minute it shows at `at` in `fromZone` (seconds are dropped). A time that does not exist in
 * `toZone` that day (the clocks jump over it) gives the instant of the jump; one that occurs twice,
 * the first; one already past there (`toZone` is ahead of `fromZone`), `at` itself.
 */
export function sameWallTimeIn(at: Date, fromZone: string, toZone: string): Date {
  const w = wall(at.getTime(), fromZone);
  const found = localInstant(w.year, w.month, w.day, w.hour * 60 + w.minute, toZone, at.getTime() - 1);
  return new Date(Math.max(found, at.getTime()));
}

export interface BroadcastSchedule {
  readonly cron: string;
  readonly timezone: string;
  readonly person_timezone?: boolean | undefined;
}

/** The zone a broadcast's cron ticks in: the campaign's, or the earliest for one in each person's zone. */
export function scheduleZone(schedule: BroadcastSchedule): string {
  return schedule.person_timezone ? EARLIEST_TIME_ZONE : schedule.timezone;
}

export interface BroadcastStart {
  readonly at: Date;
  readonly zone: string;
  /** For the enrol decision: `at 09:00 Asia/Tokyo (2026-12-07T00:00:00.000Z)`. */
  readonly reason: string;
}

const two = (n: number) => String(n).padStart(2, '0');

/**
 * When a member's journey begins for the broadcast tick at `tickAt`: for a broadcast in each
 * person's zone, the first instant the tick's wall time (in the earliest zone, where it ticked)
 * comes in the member's zone (`personZone`, from the trait), else in the campaign's; never before
 * `now`, so a tick run late starts late rather than in the past. Undefined for a broadcast in the
 * campaign's zone: it begins when the tick runs.
 */
export function broadcastStart(schedule: BroadcastSchedule, tickAt: Date, personZone: string | undefined, now: Date): BroadcastStart | undefined {
  if (!schedule.person_timezone) return undefined;
  const own = isTimeZone(personZone);
  const zone = own ? personZone : schedule.timezone;
  const at = new Date(Math.max(sameWallTimeIn(tickAt, EARLIEST_TIME_ZONE, zone).getTime(), now.getTime()));
  const local = wall(at.getTime(), zone);
  const fallback = own ? '' : ", the campaign's zone: no valid timezone trait";
  return { at, zone, reason: `at ${two(local.hour)}:${two(local.minute)} ${zone} (${at.toISOString()})${fallback}` };
}

// ── steps ───────────────────────────────────────────────────────────────────────────────────────

function stepAt(steps: readonly Step[], path: StepPath): Step | undefined {
  let list: readonly Step[] = steps;
  let step: Step | undefined;
  for (const part of path) {
    if (typeof part === 'number') {
      step = list[part];
      if (!step) return undefined;
    } else {
      if (!step || !('branch' in step)) return undefined;
      list = step.branch[part];
    }
  }
  return step;
}

/** The step after the one at `path`, climbing out of branches; null past the last. */
function nextPath(steps: readonly Step[], path: StepPath): StepPath | null {
  let current = path;
  for (;;) {
    const index = current[current.length - 1] as number;
    const parent = current.slice(0, -1);
    const following = [...parent, index + 1];
    if (stepAt(steps, following)) return following;
    if (parent.length === 0) return null;
    current = parent.slice(0, -1);
  }
}

const stepIdOf = (step: Step, path: StepPath) => step.id ?? stepPathKey(path);

class Run {
  readonly actions: JourneyAction[] = [];
  private snapshot: ProfileSnapshot;
  private sentHere = 0;

  constructor(
    private readonly campaign: CompiledCampaign,
    private readonly state: JourneyState,
    snapshot: ProfileSnapshot,
    private readonly context: JourneyContext,
    /** The moment of a start whose steps begin later (JourneyInput `start.now`). */
    private readonly startedEarlyAt?: Date,
  ) {
    this.snapshot = snapshot;
  }

  finish(how: 'completed' | 'exited' | 'ended', reason: string): JourneyResult {
    this.actions.push({ kind: 'finished', how, reason });
    return { state: null, actions: this.actions };
  }

  private wait(cursor: StepPath, waiting: Waiting, wakeAt: Date): JourneyResult {
    this.actions.push({ kind: 'wake', at: wakeAt });
    return { state: { campaignId: this.state.campaignId, entry: this.state.entry, cursor, waiting, startedAt: this.state.startedAt }, actions: this.actions };
  }

  /** Runs steps from `path` at time `at` until one waits or the journey ends. */
  from(path: StepPath | null, at: Date): JourneyResult {
    const steps = this.campaign.file.steps;
    let cursor = path;
    while (cursor !== null) {
      const step = stepAt(steps, cursor);
      if (!step) return this.finish('ended', `step ${stepPathKey(cursor)} is not in campaign ${this.campaign.id} version ${this.campaign.version.slice(0, 12)}`);
      const stepId = stepIdOf(step, cursor);
      if ('send' in step) {
        const sent = this.send(step.send.template, stepId, at);
        if (sent) return this.wait(cursor, { kind: 'wait', until: sent }, sent);
      } else if ('wait' in step) {
        const until = new Date(at.getTime() + durationMs(step.wait));
        return this.wait(cursor, { kind: 'wait', until }, until);
      } else if ('wait_until' in step) {
        const timeoutAt = new Date(at.getTime() + durationMs(step.wait_until.timeout));
        return this.wait(cursor, { kind: 'wait_until', match: step.wait_until.event, timeoutAt }, timeoutAt);
      } else if ('branch' in step) {
        const condition = this.campaign.branches.get(stepPathKey(cursor));
        const taken = condition?.(this.snapshot, at, this.context.catalog).value ? 'then' : 'else';
        if (step.branch[taken].length > 0) {
          cursor = [...cursor, taken, 0];
          continue;
        }
      } else if ('set_trait' in step) {
        const { name, value } = step.set_trait;
        this.actions.push({ kind: 'set_trait', stepId, name, value });
        this.snapshot = { ...this.snapshot, traits: { ...this.snapshot.traits, [name]: value } };
      } else if ('add_to_segment' in step || 'remove_from_segment' in step) {
        const adding = 'add_to_segment' in step;
        const segmentId = adding ? step.add_to_segment : (step as { remove_from_segment: string }).remove_from_segment;
        this.actions.push({ kind: adding ? 'add_to_segment' : 'remove_from_segment', stepId, segmentId });
        const segments = new Set(this.snapshot.segments);
        if (adding) segments.add(segmentId);
        else segments.delete(segmentId);
        this.snapshot = { ...this.snapshot, segments };
      } else if ('end' in step) {
        return this.finish('ended', `end step ${stepId}`);
      }
      cursor = nextPath(steps, cursor);
    }
    return this.finish('completed', 'all steps done');
  }

  /**
   * Emits the send (or its skip); returns the time the journey waits for, when it was deferred by
   * quiet hours or is due after a start made early (a broadcast in each person's zone).
   * The frequency cap is applied here, at schedule time, and checked again at send time by whoever
   * sends (the email worker, the simulator).
   */
  private send(template: string, stepId: string, at: Date): Date | undefined {
    const limits = this.campaign.file.limits;
    const quiet = limits.quiet_hours ?? this.context.quietHours ?? null;
    let sendAt = at;
    let deferral: string | undefined;
    if (quiet) {
      const zone = isTimeZone(this.snapshot.timezone) ? this.snapshot.timezone : quiet.timezone;
      const end = quietHoursEnd(at, quiet, zone);
      if (end) {
        sendAt = end;
        deferral = `quiet hours ${quiet.from}–${quiet.to} ${zone}: deferred to ${end.toISOString()}`;
      }
    }
    const cap = limits.frequency_cap;
    if (cap) {
      const since = new Date(sendAt.getTime() - durationMs(cap.per));
      const count = this.context.sendsInWindow(cap.channel, since) + this.sentHere;
      if (count >= cap.max) {
        this.actions.push({ kind: 'skip', stepId, reason: `frequency cap: ${count} ${cap.channel} sends in the ${cap.per} before ${sendAt.toISOString()}, at most ${cap.max}` });
        return undefined;
      }
    }
    this.sentHere++;
    if (deferral === undefined) {
      this.actions.push({ kind: 'send', template, stepId, at: sendAt });
      return this.startedEarlyAt !== undefined && sendAt > this.startedEarlyAt ? sendAt : undefined;
    }
    this.actions.push({ kind: 'send', template, stepId, at: sendAt, deferredFrom: at, reason: deferral });
    return sendAt;
  }
}

/**
 * Whether the journey waits for its own send to go out (deferred by quiet hours, or due after an
 * early start): the send's delayed job is the timely part, and the rules tick moves the journey on.
 */
export function waitsForItsSend(campaign: CompiledCampaign, state: JourneyState | null): boolean {
  return state?.waiting?.kind === 'wait' && 'send' in (stepAt(campaign.file.steps, state.cursor) ?? {});
}

/** Whether an event arriving now releases a wait_until: it matches and happened during the wait. */
function releases(campaign: CompiledCampaign, state: JourneyState, waiting: Extract<Waiting, { kind: 'wait_until' }>, event: SnapshotEvent): boolean {
  const step = stepAt(campaign.file.steps, state.cursor);
  const startedAt = step && 'wait_until' in step ? waiting.timeoutAt.getTime() - durationMs(step.wait_until.timeout) : -Infinity;
  const t = event.occurredAt.getTime();
  if (t < startedAt || t >= waiting.timeoutAt.getTime()) return false;
  const matcher = campaign.waits.get(stepPathKey(state.cursor)) ?? compileEventMatch(waiting.match);
  return matcher(event);
}

export function advance(
  campaign: CompiledCampaign,
  state: JourneyState,
  input: JourneyInput,
  snapshot: ProfileSnapshot,
  context: JourneyContext,
): JourneyResult {
  const run = new Run(campaign, state, snapshot, context, input.kind === 'start' ? input.now : undefined);
  const steps = campaign.file.steps;
  const waiting = state.waiting;
  if (!waiting) return input.kind === 'event' ? { state, actions: [] } : run.from(state.cursor, input.at);
  // Released at the time given, not the time planned: a late timer sends late rather than in the past.
  const goOn = () => run.from(nextPath(steps, state.cursor), input.at);

  if (waiting.kind === 'wait') {
    return input.kind !== 'event' && input.at >= waiting.until ? goOn() : { state, actions: [] };
  }
  if (input.kind === 'event') return releases(campaign, state, waiting, input.event) ? goOn() : { state, actions: [] };
  if (input.at < waiting.timeoutAt) return { state, actions: [] };
  // A matching event stored before this journey got to see it still counts.
  if (snapshot.events.some((e) => releases(campaign, state, waiting, e))) return goOn();
  const step = stepAt(steps, state.cursor);
  const timeout = step && 'wait_until' in step ? step.wait_until : undefined;
  const reason = `no ${describeEventMatch(waiting.match)} within ${timeout?.timeout ?? 'the timeout'}`;
  return timeout?.on_timeout === 'exit' ? run.finish('exited', reason) : goOn();
}

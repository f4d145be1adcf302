import type { Comparison, Condition, EventMatch, PropertyFilter, Scalar } from '../../schemas/rules/conditions';
import { durationMs } from '../../schemas/rules/conditions';
import type { EventType } from '../../schemas/segment';
import { type ConsentState, decide } from '../consent/gate';
import type { PurposeCatalog } from '../consent/purposes';

/**
 * Conditions of segment and campaign files compiled once into predicates over a person's state.
 * Pure: the caller supplies the snapshot and the time, so the same inputs give the same answer in
 * the events worker, the recompute and the simulator.
 */

export interface SnapshotEvent {
  readonly type: EventType;
  /** The track event name, or the page/screen name; null for the others. */
  readonly name: string | null;
  readonly properties: Readonly<Record<string, unknown>>;
  readonly occurredAt: Date;
}

export interface ProfileSnapshot {
  readonly profileId: string;
  /** Plain values (the engine unwraps the stored `{v, src, at}`). */
  readonly traits: Readonly<Record<string, unknown>>;
  readonly consent: ConsentState;
  /** Current memberships. */
  readonly segments: ReadonlySet<string>;
  /** Recent events, only those the rule set needs (CompiledRuleSet.needs). */
  readonly events: readonly SnapshotEvent[];
  readonly lastSeenAt: Date | null;
  /** Trait `timezone` when it is a valid IANA zone. */
  readonly timezone?: string;
}

export interface ConditionResult {
  readonly value: boolean;
  /** Earliest future time the value may flip with no new event (a window sliding), or null. */
  readonly nextChangeAt: Date | null;
  /** Short human reason, e.g. "Article Read: 2 of at least 3 within 14d". */
  readonly reason: string;
}

export type CompiledCondition = (snapshot: ProfileSnapshot, now: Date, catalog: PurposeCatalog) => ConditionResult;
export type EventMatcher = (event: SnapshotEvent) => boolean;

// ── values ──────────────────────────────────────────────────────────────────────────────────────

const DECIMAL = /^-?\d+(\.\d+)?$/;

/** Numbers compare by value whether sent as 99 or "99": SDKs differ in how they send amounts. */
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && DECIMAL.test(value)) return Number(value);
  return undefined;
}

function sameScalar(value: unknown, expected: Scalar): boolean {
  if (value === expected) return true;
  if (typeof expected === 'number') return toNumber(value) === expected;
  if (typeof expected === 'string' && typeof value === 'number') return String(value) === expected;
  return false;
}

function show(value: unknown): string {
  if (value === undefined) return 'not set';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

interface ValueTest {
  readonly test: (value: unknown) => boolean;
  /** e.g. `equals "pro"`, `>= 100`. */
  readonly describe: string;
}

function compileComparison(spec: Scalar | Comparison): ValueTest {
  if (typeof spec !== 'object') return { test: (v) => sameScalar(v, spec), describe: `equals ${show(spec)}` };
  const c = spec;
  if (c.equals !== undefined) {
    const expected = c.equals;
    return { test: (v) => sameScalar(v, expected), describe: `equals ${show(expected)}` };
  }
  if (c.not_equals !== undefined) {
    const expected = c.not_equals;
    // Not set is "not equal": a marketer writing `plan: {not_equals: pro}` means everyone but pro.
    return { test: (v) => !sameScalar(v, expected), describe: `not equals ${show(expected)}` };
  }
  if (c.in !== undefined) {
    const list = c.in;
    return { test: (v) => list.some((x) => sameScalar(v, x)), describe: `in ${show(list)}` };
  }
  if (c.not_in !== undefined) {
    const list = c.not_in;
    return { test: (v) => !list.some((x) => sameScalar(v, x)), describe: `not in ${show(list)}` };
  }
  if (c.exists !== undefined) {
    const wanted = c.exists;
    return { test: (v) => (v !== undefined && v !== null) === wanted, describe: wanted ? 'is set' : 'is not set' };
  }
  const numeric = (op: string, bound: number, cmp: (n: number) => boolean): ValueTest => ({
    test: (v) => {
      const n = toNumber(v);
      return n !== undefined && cmp(n);
    },
    describe: `${op} ${bound}`,
  });
  if (c.gt !== undefined) {
    const b = c.gt;
    return numeric('>', b, (n) => n > b);
  }
  if (c.gte !== undefined) {
    const b = c.gte;
    return numeric('>=', b, (n) => n >= b);
  }
  if (c.lt !== undefined) {
    const b = c.lt;
    return numeric('<', b, (n) => n < b);
  }
  if (c.lte !== undefined) {
    const b = c.lte;
    return numeric('<=', b, (n) => n <= b);
  }
  if (c.contains !== undefined) {
    const needle = c.contains;
    return {
      test: (v) => (typeof v === 'string' ? v.includes(needle) : Array.isArray(v) && v.some((x) => sameScalar(x, needle))),
      describe: `contains ${show(needle)}`,
    };
  }
  // The schema admits exactly one operator; a hand-built object without one must not match everything.
  throw new Error(`a comparison without an operator: ${show(spec)}`);
}

/** A property by its name, else by a dotted path into nested objects (`product.sku`). */
function propertyValue(properties: Readonly<Record<string, unknown>>, key: string): unknown {
  if (Object.hasOwn(properties, key)) return properties[key];
  if (!key.includes('.')) return undefined;
  let current: unknown = properties;
  for (const part of key.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

// ── events ──────────────────────────────────────────────────────────────────────────────────────

type MatchSpec = Pick<EventMatch, 'name' | 'where'> & { readonly type: EventType };

function compileFilter(where: PropertyFilter | undefined): (properties: Readonly<Record<string, unknown>>) => boolean {
  if (!where) return () => true;
  const tests = Object.entries(where).map(([key, spec]) => ({ key, test: compileComparison(spec).test }));
  return (properties) => tests.every(({ key, test }) => test(propertyValue(properties, key)));
}

export function compileEventMatch(match: MatchSpec): EventMatcher {
  const { type, name } = match;
  const filter = compileFilter(match.where);
  return (event) => event.type === type && (name === undefined || event.name === name) && filter(event.properties);
}

/** Whether an event matches a trigger, exit or wait_until match, with every property filter. */
export function matchesEvent(match: EventMatch, event: SnapshotEvent): boolean {
  return compileEventMatch(match)(event);
}

export function describeEventMatch(match: { readonly type: EventType; readonly name?: string | undefined }): string {
  if (match.name !== undefined) return match.type === 'track' ? match.name : `${match.type} ${match.name}`;
  return `any ${match.type}`;
}

// ── leaves ──────────────────────────────────────────────────────────────────────────────────────

const result = (value: boolean, nextChangeAt: Date | null, reason: string): ConditionResult => ({ value, nextChangeAt, reason });

function compileTrait(condition: { trait: string } & Comparison): CompiledCondition {
  const { trait, ...comparison } = condition;
  const { test, describe } = compileComparison(comparison as Comparison);
  return (snapshot) => {
    const value = Object.hasOwn(snapshot.traits, trait) ? snapshot.traits[trait] : undefined;
    return test(value)
      ? result(true, null, `${trait} ${describe}`)
      : result(false, null, `${trait} is ${show(value)}, expected ${describe}`);
  };
}

function compileConsent(purpose: string): CompiledCondition {
  const need = { purposes: [purpose] };
  return (snapshot, _now, catalog) => {
    const decision = decide(catalog, snapshot.consent, need);
    return result(decision.allowed, null, `consent ${purpose}: ${decision.reason}`);
  };
}

function compileInSegment(segmentId: string): CompiledCondition {
  return (snapshot) =>
    snapshot.segments.has(segmentId) ? result(true, null, `in segment ${segmentId}`) : result(false, null, `not in segment ${segmentId}`);
}

type BehaviourSpec = Extract<Condition, { events: unknown }>['events'];

function compileBehaviour(spec: BehaviourSpec): CompiledCondition {
  const windowMs = durationMs(spec.within);
  const matcher = compileEventMatch(spec);
  const { at_least: atLeast, at_most: atMost } = spec;
  const holds = (count: number) => (atLeast === undefined || count >= atLeast) && (atMost === undefined || count <= atMost);
  const bound =
    atLeast !== undefined && atMost !== undefined ? `${atLeast} to ${atMost}` : atLeast !== undefined ? `at least ${atLeast}` : `at most ${atMost}`;
  const label = describeEventMatch(spec);
  return (snapshot, now) => {
    const end = now.getTime();
    const start = end - windowMs;
    // An event counts while start < occurredAt <= now, so it leaves the window at occurredAt + within.
    const times: number[] = [];
    for (const event of snapshot.events) {
      const t = event.occurredAt.getTime();
      if (t > start && t <= end && matcher(event)) times.push(t);
    }
    const count = times.length;
    const value = holds(count);
    let nextChangeAt: Date | null = null;
    // Without new events the count only falls, one step as each counted event leaves the window.
    if (count > 0 && (value || atMost !== undefined)) {
      times.sort((a, b) => a - b);
      for (let k = 0; k < count; k++) {
        if (holds(count - k - 1) !== value) {
          nextChangeAt = new Date((times[k] as number) + windowMs);
          break;
        }
      }
    }
    return result(value, nextChangeAt, `${label}: ${count} of ${bound} within ${spec.within}`);
  };
}

function compileLastSeen(spec: { within?: string | undefined; before?: string | undefined }): CompiledCondition {
  const within = spec.within !== undefined;
  const text = within ? `within ${spec.within}` : `before ${spec.before}`;
  const ms = durationMs((within ? spec.within : spec.before) as string);
  return (snapshot, now) => {
    const seen = snapshot.lastSeenAt;
    if (seen === null) return result(false, null, `never seen, expected last seen ${text}`);
    // Seen within D while lastSeenAt > now - D; "before D" is the complement, so both flip at lastSeenAt + D.
    const flip = seen.getTime() + ms;
    const recent = now.getTime() < flip;
    const value = within ? recent : !recent;
    const nextChangeAt = recent ? new Date(flip) : null;
    return result(value, nextChangeAt, `last seen ${seen.toISOString()}${value ? ', ' : ', expected '}${text}`);
  };
}

// ── combinators ─────────────────────────────────────────────────────────────────────────────────

function earliest(dates: ReadonlyArray<Date | null>): Date | null {
  let best: Date | null = null;
  for (const d of dates) if (d !== null && (best === null || d < best)) best = d;
  return best;
}

/** The latest of the dates, or null if any is null (one of them never flips without an event). */
function latest(dates: ReadonlyArray<Date | null>): Date | null {
  let best: Date | null = null;
  for (const d of dates) {
    if (d === null) return null;
    if (best === null || d > best) best = d;
  }
  return best;
}

/**
 * `all` (and, mirrored, `any`). When every child agrees with the result, the first child to flip
 * flips it; otherwise it flips only once every dissenting child has flipped, so the latest of their
 * next changes is the earliest it may. Both are lower bounds: evaluating again then is always safe.
 */
function compileAll(children: readonly CompiledCondition[], mode: 'all' | 'any'): CompiledCondition {
  const decisive = mode === 'all' ? false : true;
  return (snapshot, now, catalog) => {
    const results = children.map((c) => c(snapshot, now, catalog));
    const deciding = results.filter((r) => r.value === decisive);
    if (deciding.length === 0) {
      const reasons = results.map((r) => r.reason);
      const reason = mode === 'all' ? reasons.join(' and ') : `none of: ${reasons.join('; ')}`;
      return result(!decisive, earliest(results.map((r) => r.nextChangeAt)), reason);
    }
    return result(decisive, latest(deciding.map((r) => r.nextChangeAt)), (deciding[0] as ConditionResult).reason);
  };
}

export function compileCondition(condition: Condition): CompiledCondition {
  if ('all' in condition) return compileAll(condition.all.map(compileCondition), 'all');
  if ('any' in condition) return compileAll(condition.any.map(compileCondition), 'any');
  if ('not' in condition) {
    const inner = compileCondition(condition.not);
    return (snapshot, now, catalog) => {
      const r = inner(snapshot, now, catalog);
      // Reasons state facts ("not in segment x", "plan is \"free\""), which explain the negation as well.
      return result(!r.value, r.nextChangeAt, r.reason);
    };
  }
  if ('trait' in condition) return compileTrait(condition);
  if ('consent' in condition) return compileConsent(condition.consent);
  if ('in_segment' in condition) return compileInSegment(condition.in_segment);
  if ('events' in condition) return compileBehaviour(condition.events);
  if ('last_seen' in condition) return compileLastSeen(condition.last_seen);
  throw new Error(`not a condition: ${show(condition)}`);
}

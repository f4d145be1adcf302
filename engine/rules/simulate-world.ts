import type { PurposeCatalog } from '../consent/purposes';
import { type CompiledRuleSet, compileRuleSet } from './compile';
import type { ProfileSnapshot } from './conditions';
import type { JourneyContext } from './journey';
import type { RuleSet } from './rule-set';
import { Agenda } from './simulate-agenda';
import { type Journey, newPerson, type Person, snapshotOf } from './simulate-person';
import type { SimulateOptions, TimelineEntry } from './simulate-timeline';

/**
 * The state of one simulation run, shared by its parts: the compiled rules, virtual time and its
 * agenda, the people, and the timeline being written.
 */
export class World {
  readonly compiled: CompiledRuleSet;
  readonly catalog: PurposeCatalog;
  readonly agenda = new Agenda();
  readonly people = new Map<string, Person>();
  readonly entries: TimelineEntry[] = [];
  sendIds = 0;
  /** Virtual time (ms). */
  now = 0;

  constructor(
    readonly ruleSet: RuleSet,
    readonly options: SimulateOptions,
  ) {
    this.compiled = compileRuleSet(ruleSet);
    this.catalog = ruleSet.purposes;
  }

  get at(): Date {
    return new Date(this.now);
  }

  /** Before `from`, events build up history only: nothing is recorded and nobody is enrolled. */
  live(): boolean {
    return this.options.from === undefined || this.now >= this.options.from.getTime();
  }

  record(entry: Omit<TimelineEntry, 'at'>): void {
    if (this.live()) this.entries.push({ at: this.at, ...entry });
  }

  person(key: string): Person {
    let p = this.people.get(key);
    if (!p) {
      p = newPerson(key);
      this.people.set(key, p);
    }
    return p;
  }

  snapshot(p: Person): ProfileSnapshot {
    return snapshotOf(p, this.now, this.compiled.needs.maxWindowMs);
  }

  /** Recomputes the person's segments and exit conditions at `at`, unless one is already due by then. */
  recheck(p: Person, at: number): void {
    if (p.recheckAt !== null && p.recheckAt <= at && p.recheckAt >= this.now) return;
    p.recheckAt = at;
    this.agenda.push(at, { kind: 'segments', person: p.key });
  }

  context(p: Person): JourneyContext {
    return {
      catalog: this.catalog,
      sendsInWindow: (_channel: 'email', since: Date) =>
        p.sends.filter((s) => (s.status === 'scheduled' || s.status === 'sent') && s.at >= since).length,
    };
  }

  journeysOf(p: Person, campaignId: string): Journey[] {
    return [...p.journeys.values()].filter((j) => j.state.campaignId === campaignId);
  }

  journeyCampaigns(p: Person): Set<string> {
    return new Set([...p.journeys.values()].map((j) => j.state.campaignId));
  }
}

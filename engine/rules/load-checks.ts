import { CronExpressionParser } from 'cron-parser';
import type { CampaignFile, Step } from '../../schemas/rules/campaign-file';
import type { Condition } from '../../schemas/rules/conditions';
import type { SegmentFile } from '../../schemas/rules/segment-file';
import type { PurposeCatalog } from '../consent/purposes';
import { scheduleZone } from './journey';
import type { RuleSource } from './load-source';
import type { RuleProblem } from './rule-set';

/**
 * The checks of a rule set as a whole, after each file passed its schema: ids against file names,
 * references between files (purposes, segments, templates, traits), cycles between segments,
 * schedules and unreachable steps. Every problem is collected, each at the node it is about.
 */

export interface ParsedRuleFile<T> {
  readonly source: RuleSource;
  readonly file: T;
  /** The file name without its extension: what the id must be. */
  readonly stem: string;
}

export interface RuleSetCheckInput {
  /** Undefined when purposes.yaml has problems of its own: references to purposes are not checked. */
  readonly purposes: PurposeCatalog | undefined;
  /** Undefined when properties.yaml has problems of its own: trait names are not checked. */
  readonly traits: { readonly allow: ReadonlySet<string>; readonly pii: ReadonlySet<string> } | undefined;
  /** In path order: the first file with an id is the one a duplicate is reported against. */
  readonly segments: ReadonlyArray<ParsedRuleFile<SegmentFile>>;
  readonly campaigns: ReadonlyArray<ParsedRuleFile<CampaignFile>>;
  /** Segment ids of files that have problems of their own: referring to them is not a second problem. */
  readonly brokenSegmentIds: ReadonlySet<string>;
  readonly templates: ReadonlyMap<string, string>;
}

type Path = readonly PropertyKey[];

export function checkRuleSet(input: RuleSetCheckInput): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const segments = checkIds('segment', 'segments', input.segments, problems);
  const campaigns = checkIds('campaign', 'campaigns', input.campaigns, problems);
  const refs = new References(input, segments, problems);
  for (const segment of input.segments) {
    if (segment.file.conditions) refs.condition(segment.source, segment.file.conditions, ['conditions']);
  }
  for (const campaign of input.campaigns) checkCampaign(campaign, refs, problems);
  problems.push(...segmentCycles(segments));
  return problems;
}

/**
 * `id` is the file name, and unique: files are found, and decisions point at rules, by id. Of two
 * files with one id, the one named after it is the segment or campaign others refer to.
 */
function checkIds<T extends { id: string }>(
  kind: string,
  folder: string,
  files: ReadonlyArray<ParsedRuleFile<T>>,
  problems: RuleProblem[],
): Map<string, ParsedRuleFile<T>> {
  const byId = new Map<string, ParsedRuleFile<T>>();
  const named = files.filter((parsed) => parsed.file.id === parsed.stem);
  const misnamed = files.filter((parsed) => parsed.file.id !== parsed.stem);
  for (const parsed of [...named, ...misnamed]) {
    const { id } = parsed.file;
    if (id !== parsed.stem) problems.push(parsed.source.at(['id'], `id "${id}" must equal the file name "${parsed.stem}" (${folder}/<id>.yaml)`));
    const first = byId.get(id);
    if (first) problems.push(parsed.source.at(['id'], `duplicate ${kind} id "${id}": also in ${first.source.file}`));
    else byId.set(id, parsed);
  }
  return byId;
}

class References {
  constructor(
    private readonly input: RuleSetCheckInput,
    private readonly segments: ReadonlyMap<string, ParsedRuleFile<SegmentFile>>,
    private readonly problems: RuleProblem[],
  ) {}

  purpose(source: RuleSource, name: string, path: Path): void {
    const { purposes } = this.input;
    if (purposes && !purposes.get(name)) {
      this.problems.push(source.at(path, `unknown purpose "${name}"; purposes.yaml declares: ${purposes.names.join(', ')}`));
    }
  }

  segment(source: RuleSource, id: string, path: Path): ParsedRuleFile<SegmentFile> | undefined {
    const segment = this.segments.get(id);
    if (!segment && !this.input.brokenSegmentIds.has(id)) {
      this.problems.push(source.at(path, `unknown segment "${id}": there is no segments/${id}.yaml`));
    }
    return segment;
  }

  /** add_to_segment / remove_from_segment: only a manual segment is changed by hand. */
  manualSegment(source: RuleSource, id: string, path: Path, step: string): void {
    const segment = this.segment(source, id, path);
    if (segment && !segment.file.manual) {
      this.problems.push(
        source.at(path, `segment "${id}" is computed from its conditions; ${step} needs a manual segment (manual: true)`),
      );
    }
  }

  template(source: RuleSource, name: string, path: Path): void {
    const { templates } = this.input;
    if (!templates.has(name)) {
      const known = templates.size > 0 ? `; templates: ${[...templates.keys()].join(', ')}` : '';
      this.problems.push(source.at(path, `unknown template "${name}": there is no templates/${name}.*${known}`));
    }
  }

  /** Profiles keep only the traits of properties.yaml traits.allow; personal ones are in the vault only. */
  trait(source: RuleSource, name: string, path: Path): void {
    const { traits } = this.input;
    if (!traits) return;
    if (traits.pii.has(name)) {
      this.problems.push(
        source.at(path, `trait "${name}" is personal data: it lives only in the encrypted vault, never on the profile, so rules cannot use it`),
      );
    } else if (!traits.allow.has(name)) {
      const allowed = traits.allow.size > 0 ? [...traits.allow].join(', ') : '(none)';
      this.problems.push(source.at(path, `unknown trait "${name}": profiles keep only properties.yaml traits.allow: ${allowed}`));
    }
  }

  condition(source: RuleSource, condition: Condition, path: Path): void {
    if ('all' in condition) condition.all.forEach((c, i) => this.condition(source, c, [...path, 'all', i]));
    else if ('any' in condition) condition.any.forEach((c, i) => this.condition(source, c, [...path, 'any', i]));
    else if ('not' in condition) this.condition(source, condition.not, [...path, 'not']);
    else if ('trait' in condition) this.trait(source, condition.trait, [...path, 'trait']);
    else if ('consent' in condition) this.purpose(source, condition.consent, [...path, 'consent']);
    else if ('in_segment' in condition) this.segment(source, condition.in_segment, [...path, 'in_segment']);
  }
}

function checkCampaign(campaign: ParsedRuleFile<CampaignFile>, refs: References, problems: RuleProblem[]): void {
  const { source, file } = campaign;
  file.purposes.forEach((purpose, i) => refs.purpose(source, purpose, ['purposes', i]));
  const { trigger } = file;
  if ('segment_entered' in trigger) refs.segment(source, trigger.segment_entered, ['trigger', 'segment_entered']);
  else if ('segment_left' in trigger) refs.segment(source, trigger.segment_left, ['trigger', 'segment_left']);
  else if ('schedule' in trigger) {
    refs.segment(source, trigger.segment, ['trigger', 'segment']);
    // In each person's zone the cron ticks in the earliest zone: parsed there, as the scheduler will.
    const cron = cronProblem(trigger.schedule.cron, scheduleZone(trigger.schedule));
    if (cron) problems.push(source.at(['trigger', 'schedule', 'cron'], cron));
  }
  if (file.conditions) refs.condition(source, file.conditions, ['conditions']);
  if (file.exit?.condition) refs.condition(source, file.exit.condition, ['exit', 'condition']);

  const stepIds = new Map<string, Path>();
  const visit = (steps: readonly Step[], path: Path, followed: boolean): void => {
    const end = steps.findIndex((step) => 'end' in step);
    if (end >= 0 && end < steps.length - 1) {
      problems.push(source.at([...path, end + 1], 'unreachable: this step comes after "end: true" and never runs'));
    }
    steps.forEach((step, i) => {
      const at = [...path, i];
      if (step.id !== undefined) {
        if (stepIds.has(step.id)) problems.push(source.at([...at, 'id'], `duplicate step id "${step.id}"`));
        else stepIds.set(step.id, at);
      }
      if ('send' in step) refs.template(source, step.send.template, [...at, 'send', 'template']);
      else if ('set_trait' in step) refs.trait(source, step.set_trait.name, [...at, 'set_trait', 'name']);
      else if ('add_to_segment' in step) refs.manualSegment(source, step.add_to_segment, [...at, 'add_to_segment'], 'add_to_segment');
      else if ('remove_from_segment' in step) {
        refs.manualSegment(source, step.remove_from_segment, [...at, 'remove_from_segment'], 'remove_from_segment');
      } else if ('branch' in step) {
        refs.condition(source, step.branch.if, [...at, 'branch', 'if']);
        // After a branch the journey goes on with the next step of this list.
        const continues = followed || i < steps.length - 1;
        visit(step.branch.then, [...at, 'branch', 'then'], continues);
        visit(step.branch.else, [...at, 'branch', 'else'], continues);
      }
      // The journey ends after the last step: a wait there waits for nothing (after an end, the
      // step is already reported as unreachable).
      const last = i === steps.length - 1;
      if (last && !followed && (end < 0 || end > i) && ('wait' in step || 'wait_until' in step)) {
        const kind = 'wait' in step ? 'wait' : 'wait_until';
        problems.push(source.at(at, `nothing comes after this ${kind}: the journey would wait for nothing; remove it or add the steps that follow it`));
      }
    });
  };
  visit(file.steps, ['steps'], false);
}

/**
 * Broadcast schedules: five fields (minute hour day-of-month month day-of-week) or a named one such
 * as @weekly. cron-parser also reads a sixth field of seconds, which no broadcast needs, and fills
 * in missing fields, which would hide a mistake; both are refused here.
 */
function cronProblem(expression: string, timezone: string): string | undefined {
  const trimmed = expression.trim();
  const fields = trimmed.split(/\s+/).length;
  if (trimmed.startsWith('@') ? trimmed === '@secondly' : fields !== 5) {
    return `invalid cron expression "${expression}": expected 5 fields (minute hour day-of-month month day-of-week), e.g. "0 9 * * 1", or one of @hourly, @daily, @weekly, @monthly, @yearly`;
  }
  try {
    CronExpressionParser.parse(trimmed, { tz: timezone });
    return undefined;
  } catch (err) {
    return `invalid cron expression "${expression}": ${(err as Error).message}`;
  }
}

/**
 * Membership of a segment that depends on itself through `in_segment` has no answer. Each strongly
 * connected group of segments is reported once, as its shortest cycle from its first id, at the
 * `in_segment` that starts it.
 */
function segmentCycles(segments: ReadonlyMap<string, ParsedRuleFile<SegmentFile>>): RuleProblem[] {
  const edges = new Map<string, Array<{ to: string; path: Path }>>();
  for (const [id, segment] of segments) {
    const out: Array<{ to: string; path: Path }> = [];
    const walk = (condition: Condition, path: Path): void => {
      if ('all' in condition) condition.all.forEach((c, i) => walk(c, [...path, 'all', i]));
      else if ('any' in condition) condition.any.forEach((c, i) => walk(c, [...path, 'any', i]));
      else if ('not' in condition) walk(condition.not, [...path, 'not']);
      else if ('in_segment' in condition && segments.has(condition.in_segment)) out.push({ to: condition.in_segment, path: [...path, 'in_segment'] });
    };
    if (segment.file.conditions) walk(segment.file.conditions, ['conditions']);
    edges.set(id, out);
  }
  const problems: RuleProblem[] = [];
  for (const component of stronglyConnected([...segments.keys()].sort(), edges)) {
    const start = [...component].sort()[0] as string;
    const cycle = shortestCycle(start, component, edges);
    if (!cycle) continue;
    const first = cycle.edges[0];
    const segment = segments.get(start);
    if (!first || !segment) continue;
    problems.push(segment.source.at(first.path, `segments form a cycle through in_segment: ${[...cycle.ids, start].join(' → ')}`));
  }
  return problems;
}

/** Tarjan's algorithm; components of one segment are kept only if it refers to itself. */
function stronglyConnected(ids: readonly string[], edges: ReadonlyMap<string, ReadonlyArray<{ to: string }>>): Array<Set<string>> {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: Array<Set<string>> = [];
  const visit = (id: string): void => {
    index.set(id, counter);
    low.set(id, counter);
    counter += 1;
    stack.push(id);
    onStack.add(id);
    for (const { to } of edges.get(id) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(id, Math.min(low.get(id) as number, low.get(to) as number));
      } else if (onStack.has(to)) low.set(id, Math.min(low.get(id) as number, index.get(to) as number));
    }
    if (low.get(id) === index.get(id)) {
      const component = new Set<string>();
      let member: string | undefined;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.add(member);
      } while (member !== id);
      const selfLoop = (edges.get(id) ?? []).some((e) => e.to === id);
      if (component.size > 1 || selfLoop) components.push(component);
    }
  };
  // Segment files are few and a chain of in_segment is short, so recursion depth is no concern.
  for (const id of ids) if (!index.has(id)) visit(id);
  return components;
}

function shortestCycle(
  start: string,
  within: ReadonlySet<string>,
  edges: ReadonlyMap<string, ReadonlyArray<{ to: string; path: Path }>>,
): { ids: string[]; edges: Array<{ to: string; path: Path }> } | undefined {
  // Breadth-first from start, in id order, until an edge leads back to start.
  const previous = new Map<string, { from: string; edge: { to: string; path: Path } }>();
  const queue = [start];
  for (let head = 0; head < queue.length; head += 1) {
    const id = queue[head] as string;
    const out = [...(edges.get(id) ?? [])].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
    for (const edge of out) {
      if (!within.has(edge.to)) continue;
      if (edge.to === start) {
        const ids = [id];
        const path = [edge];
        for (let at = id; at !== start; ) {
          const step = previous.get(at);
          if (!step) break;
          ids.unshift(step.from);
          path.unshift(step.edge);
          at = step.from;
        }
        return { ids, edges: path };
      }
      if (!previous.has(edge.to) && edge.to !== start) {
        previous.set(edge.to, { from: id, edge });
        queue.push(edge.to);
      }
    }
  }
  return undefined;
}

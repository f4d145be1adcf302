import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { RuleProblem } from './rule-set';

/**
 * One rule file as read for `loadRuleSet`: its YAML (or JSON) document with the line of every node,
 * so that a problem found in the parsed data, by zod or by a later check, points at the line and
 * column a marketer has to change rather than at a field path they would have to count out.
 */
export class RuleSource {
  /** YAML syntax errors, at their own position; when there are any, `data` is undefined. */
  readonly syntaxProblems: readonly RuleProblem[];
  readonly data: unknown;
  private readonly doc: Document.Parsed;
  private readonly lines = new LineCounter();

  constructor(
    /** Relative to the rules directory, e.g. `campaigns/welcome.yaml`. */
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lines, prettyErrors: false });
    const problems = this.doc.errors.map((e) => this.problemAtOffset(e.pos[0], e.message));
    let data: unknown;
    if (problems.length === 0) {
      try {
        data = this.doc.toJS();
      } catch (err) {
        // e.g. an alias expanding past yaml's maxAliasCount (a "billion laughs" document).
        problems.push(this.problemAtOffset(0, (err as Error).message));
      }
    }
    this.syntaxProblems = problems;
    this.data = data;
  }

  /** A problem at the node of `path` (a path in the parsed data), or its nearest ancestor in the file. */
  at(path: readonly PropertyKey[], message: string): RuleProblem {
    return this.problemAtOffset(this.locate(path, false), message);
  }

  /** A problem at the key (not the value) of the last element of `path`: an unknown or misplaced key. */
  atKey(path: readonly PropertyKey[], message: string): RuleProblem {
    return this.problemAtOffset(this.locate(path, true), message);
  }

  /**
   * Validates `data` with `schema`; each zod issue becomes a problem located in the source (see
   * `describeIssues` for how unions and unknown keys are explained).
   */
  parse<T>(schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; problems: RuleProblem[] } {
    if (this.data === null || this.data === undefined) return { ok: false, problems: [this.at([], 'the file is empty')] };
    const parsed = schema.safeParse(this.data, { error: allowedKeysMessage });
    if (parsed.success) return { ok: true, value: parsed.data };
    return {
      ok: false,
      problems: describeIssues(parsed.error.issues, this.data).map((d) => (d.key ? this.atKey(d.path, d.message) : this.at(d.path, d.message))),
    };
  }

  private problemAtOffset(offset: number, message: string): RuleProblem {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col, message };
  }

  /** The offset of the deepest node along `path` that exists in the file (0 for an empty file). */
  private locate(path: readonly PropertyKey[], wantKey: boolean): number {
    let current: unknown = this.doc.contents;
    let offset = rangeStart(current) ?? 0;
    for (const [index, segment] of path.entries()) {
      const last = index === path.length - 1;
      if (isMap(current)) {
        const pair = current.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) break;
        const keyStart = rangeStart(pair.key);
        const value = pair.value as Node | null;
        // `key:` with nothing after it has an empty value node, on the next line: point at the key.
        const empty = !value || !value.range || value.range[0] === value.range[1];
        const at = (last && wantKey) || empty ? keyStart : rangeStart(value);
        if (at !== undefined) offset = at;
        current = value;
      } else if (isSeq(current)) {
        const item = current.items[Number(segment)];
        const at = rangeStart(item);
        if (at === undefined) break;
        offset = at;
        current = item;
      } else break;
    }
    return offset;
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/**
 * The parse-time message of an unknown key names the keys that are allowed there: the object
 * schema that refused the key is known only while the issue is raised. `describeIssues` puts the
 * key itself in front.
 */
const allowedKeysMessage: z.core.$ZodErrorMap = (issue) => {
  if (issue.code !== 'unrecognized_keys') return undefined;
  const def = (issue.inst as z.core.$ZodType | undefined)?._zod.def;
  if (def?.type !== 'object') return undefined;
  return `allowed: ${Object.keys((def as z.core.$ZodObjectDef).shape).join(', ')}`;
};

interface Described {
  readonly path: readonly PropertyKey[];
  /** Located at the key of the path's last element rather than at its value. */
  readonly key: boolean;
  readonly message: string;
  readonly code: string;
}

/** zod issues, as messages a marketer can act on, each with the data path it is about. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], data: unknown): Described[] {
  const described = issues.flatMap((issue) => flatten(issue, [], data));
  // `{trait: plan, eqals: pro}` also fails the "exactly one operator" refinement, and `{templat: x}`
  // lacks `template`: the unknown key is the cause, so other messages about the same object, whose
  // allowed keys it names, would only distract.
  const withUnknownKeys = new Set(described.filter((d) => d.code === 'unrecognized_keys').map((d) => pathKey(d.path.slice(0, -1))));
  return described.filter((d) => !((d.code === 'custom' || d.code === 'missing_key') && withUnknownKeys.has(pathKey(d.path))));
}

function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map(String));
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let current = data;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function plainMessage(message: string): string {
  return message.replace(/^Invalid input: /, '');
}

function flatten(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[], data: unknown): Described[] {
  const at = [...prefix, ...issue.path];
  switch (issue.code) {
    case 'invalid_key':
      // A bad record key: the inner issues are about the key string, so point at the key.
      return issue.issues.flatMap((inner) => flatten(inner, prefix, data).map((d) => ({ ...d, path: at, key: true })));
    case 'unrecognized_keys': {
      const allowed = issue.message.startsWith('allowed: ') ? `; ${issue.message}` : '';
      return issue.keys.map((key) => ({ path: [...at, key], key: true, code: issue.code, message: `unrecognized key "${key}"${allowed}` }));
    }
    case 'invalid_union':
      return flattenUnion(issue, at, data);
    case 'invalid_type': {
      const parent = valueAt(data, at.slice(0, -1));
      const name = at[at.length - 1];
      if (name !== undefined && isPlainObject(parent) && !Object.hasOwn(parent, name)) {
        const detail = /received undefined$/.test(issue.message) ? '' : `: ${plainMessage(issue.message)}`;
        return [{ path: at.slice(0, -1), key: false, code: 'missing_key', message: `missing key "${String(name)}"${detail}` }];
      }
      break;
    }
    case 'invalid_value':
      if (/^Invalid (option|input)/.test(issue.message)) {
        const values = issue.values.map(String);
        const message = values.length === 1 ? `expected ${values[0]}` : `expected one of: ${values.join(', ')}`;
        return [{ path: at, key: false, code: issue.code, message }];
      }
      break;
    default:
      break;
  }
  return [{ path: at, key: false, code: issue.code, message: plainMessage(issue.message) }];
}

/** An alternative the value cannot be meant for: it fails on the value's type at its root. */
function failsAtRoot(errors: readonly z.core.$ZodIssue[]): boolean {
  return errors.every(
    (e) => e.path.length === 0 && (e.code === 'invalid_type' || (e.code === 'invalid_union' && e.errors.every(failsAtRoot))),
  );
}

function unknownKeys(errors: readonly z.core.$ZodIssue[]): Set<string> {
  return new Set(errors.flatMap((e) => (e.code === 'unrecognized_keys' && e.path.length === 0 ? e.keys : [])));
}

/**
 * zod reports a value fitting no alternative of a union ("expected a step: send, wait, …") with the
 * issues of every alternative. The author meant one of them: the only one of the right type, or the
 * one that knows the most of the keys they wrote (`{trait: plan, eqals: pro}` meant a trait
 * condition); its issues are the ones to report. When no alternative stands out, keys that none of
 * them knows are reported at the key, with the union's own message naming what is expected.
 */
function flattenUnion(issue: z.core.$ZodIssueInvalidUnion, at: readonly PropertyKey[], data: unknown): Described[] {
  const alternatives = issue.errors.filter((errors) => !failsAtRoot(errors));
  const unionMessage = plainMessage(issue.message);
  const explore = (errors: readonly z.core.$ZodIssue[]) => errors.flatMap((inner) => flatten(inner, at, data));
  if (alternatives.length === 1 && alternatives[0]) return explore(alternatives[0]);
  const value = valueAt(data, at);
  if (alternatives.length > 1 && isPlainObject(value)) {
    const keys = Object.keys(value);
    const known = alternatives.map((errors) => {
      const unknown = unknownKeys(errors);
      return keys.filter((key) => !unknown.has(key)).length;
    });
    const best = Math.max(...known);
    const fitting = alternatives.filter((_, i) => known[i] === best);
    if (best > 0 && fitting.length === 1 && fitting[0]) return explore(fitting[0]);
    const unknownEverywhere = keys.filter((key) => alternatives.every((errors) => unknownKeys(errors).has(key)));
    if (unknownEverywhere.length > 0) {
      const expected = issue.message.startsWith('Invalid input') ? allowedAcross(alternatives) : unionMessage;
      return unknownEverywhere.map((key) => ({ path: [...at, key], key: true, code: 'unrecognized_keys', message: `unrecognized key "${key}"; ${expected}` }));
    }
  }
  return [{ path: at, key: false, code: issue.code, message: unionMessage }];
}

/** For a union without a message of its own: every key some alternative allows. */
function allowedAcross(alternatives: ReadonlyArray<readonly z.core.$ZodIssue[]>): string {
  const keys = new Set<string>();
  for (const errors of alternatives) {
    for (const e of errors) {
      if (e.code === 'unrecognized_keys' && e.path.length === 0 && e.message.startsWith('allowed: ')) {
        for (const key of e.message.slice('allowed: '.length).split(', ')) keys.add(key);
      }
    }
  }
  return keys.size > 0 ? `allowed: ${[...keys].join(', ')}` : 'not allowed here';
}

import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { AppError } from '../errors';

/**
 * Reads and validates one of the marketer's files in `rules/` (YAML, or JSON, which YAML also
 * reads). A missing file means `fallback`, the built-in default; a present but invalid one is an
 * `AppError('CONFIG_INVALID')` naming the file and, per problem, its line or field path — never a
 * silent fallback, so a typo cannot quietly widen what the engine does.
 */
export function loadRulesFile<T>(filePath: string, schema: z.ZodType<T>, fallback: T): T {
  const name = displayName(filePath);
  let text: string;
  try {
    text = fs.readFileSync(filePath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw new AppError('CONFIG_INVALID', `${name}: ${(err as Error).message}`, { cause: err });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new AppError(
      'CONFIG_INVALID',
      doc.errors
        .map((e) => {
          const { line, col } = lineCounter.linePos(e.pos[0]);
          return `${name}:${line}:${col}: ${e.message}`;
        })
        .join('; '),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // e.g. an alias expanding past yaml's maxAliasCount (a "billion laughs" document).
    throw new AppError('CONFIG_INVALID', `${name}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) throw new AppError('CONFIG_INVALID', describeIssues(name, parsed.error.issues));
  return parsed.data;
}

/** A message naming the file and, per issue, the path in it: `rules/properties.yaml: events.X.allow.0: …`. */
function describeIssues(file: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .flatMap((issue) => flatten(issue, []))
    .map(({ path: at, message }) => (at.length > 0 ? `${file}: ${at.map(String).join('.')}: ${message}` : `${file}: ${message}`))
    .join('; ');
}

/**
 * zod wraps a bad record key ("Invalid key in record") and a value fitting no alternative of a union
 * ("Invalid input") around the issues that say what is wrong; a marketer needs those inner ones.
 */
function flatten(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[]): Array<{ path: PropertyKey[]; message: string }> {
  const at = [...prefix, ...issue.path];
  if (issue.code === 'invalid_key') return issue.issues.flatMap((inner) => flatten(inner, at));
  if (issue.code === 'invalid_union') {
    // An alternative failing only on the value's type at its root is one the author did not mean;
    // when exactly one other remains, its issues are the ones to report.
    const meant = issue.errors.filter((errors) => !errors.every((e) => e.code === 'invalid_type' && e.path.length === 0));
    if (meant.length === 1 && meant[0]) return meant[0].flatMap((inner) => flatten(inner, at));
  }
  return [{ path: at, message: issue.message.replace(/^Invalid input: /, '') }];
}

/** Relative to the working directory when inside it (`rules/x.yaml`), else the path as given. */
function displayName(filePath: string): string {
  const relative = path.relative(process.cwd(), filePath);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : filePath;
}

/** Freezes a built-in default all the way down, so no caller can change it for the others. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

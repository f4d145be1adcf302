import { isMap, isScalar, LineCounter, parseDocument, Scalar } from 'yaml';
import { TemplateFrontMatter } from './template-format';
import type { Origin } from './template-origins';

/**
 * The front matter of a template file (`---`, `subject: "…"`, `preheader: "…"`, `---`, then the
 * body): read with the yaml library's positions, so every problem points at its line and column.
 */

const FRONT_KEYS = 'subject and preheader';

export type Problem = (file: string, line: number, column: number, message: string) => void;

export interface FrontMatter {
  readonly subject: string;
  readonly subjectOrigin: Origin;
  readonly preheader?: string;
  readonly preheaderOrigin?: Origin;
}

/**
 * The front matter and the body after it (which starts on `bodyLine`), problems reported as found:
 * no front when it is wrong (the body is still checked), nothing when the `---` lines are missing.
 */
export function readFrontMatter(file: string, text: string, problem: Problem): { front?: FrontMatter; body: string; bodyLine: number } | undefined {
  const lines = text.split('\n');
  if (lines[0]?.trimEnd() !== '---') {
    problem(file, 1, 1, `a template starts with front matter: a line ---, subject: "…" (and preheader: "…"), a line ---, then the HTML`);
    return undefined;
  }
  const end = lines.findIndex((line, i) => i > 0 && line.trimEnd() === '---');
  if (end < 0) {
    problem(file, 1, 1, 'the front matter is not closed: end it with a line ---');
    return undefined;
  }
  const body = lines.slice(end + 1).join('\n');

  const lineCounter = new LineCounter();
  const doc = parseDocument(lines.slice(1, end).join('\n'), { lineCounter, prettyErrors: false });
  // The YAML starts on the file's second line.
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return { line: line + 1, column: col };
  };
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const { line, column } = at(e.pos[0]);
      problem(file, line, column, e.message.split('\n')[0] ?? e.message);
    }
    return { body, bodyLine: end + 2 };
  }
  // Only scalars are wanted: anything else (`subject: {{ first_name }}` is a YAML map) stands in as
  // {} for the schema to refuse, rather than being converted (and warned about) by yaml.
  const contents = doc.contents;
  const data: unknown = isMap(contents)
    ? Object.fromEntries(contents.items.map((p) => [String(isScalar(p.key) ? p.key.value : p.key), p.value === null ? null : isScalar(p.value) ? p.value.value : {}]))
    : contents === null
      ? {}
      : isScalar(contents)
        ? contents.value
        : [];
  const nodeAt = (key: string) => {
    if (!isMap(doc.contents)) return undefined;
    const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === key);
    return pair;
  };
  const parsed = TemplateFrontMatter.safeParse(data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const range = (nodeAt(key)?.key as Scalar | undefined)?.range;
          const { line, column } = range ? at(range[0]) : { line: 1, column: 1 };
          problem(file, line, column, `unknown key "${key}": the front matter has ${FRONT_KEYS}`);
        }
        continue;
      }
      const key = String(issue.path[0] ?? '');
      const pair = key ? nodeAt(key) : undefined;
      const range = ((pair?.value ?? pair?.key) as Scalar | undefined)?.range;
      const { line, column } = range ? at(range[0]) : { line: 1, column: 1 };
      problem(file, line, column, key && !issue.message.startsWith(key) ? `${key}: ${issue.message}` : issue.message);
    }
    return { body, bodyLine: end + 2 };
  }
  // Exact for plain and quoted one-line strings; for block scalars (`>-`, `|`), the line they start on.
  const origin = (key: string): Origin => {
    const value = nodeAt(key)?.value;
    if (!isScalar(value) || !value.range) return { file, line: 2, column: 1 };
    const { line, column } = at(value.range[0]);
    const quoted = value.type === Scalar.QUOTE_DOUBLE || value.type === Scalar.QUOTE_SINGLE;
    const block = value.type === Scalar.BLOCK_FOLDED || value.type === Scalar.BLOCK_LITERAL;
    return block ? { file, line: line + 1, column: 1 } : { file, line, column: column + (quoted ? 1 : 0) };
  };
  const front: FrontMatter = {
    subject: parsed.data.subject,
    subjectOrigin: origin('subject'),
    ...(parsed.data.preheader !== undefined ? { preheader: parsed.data.preheader, preheaderOrigin: origin('preheader') } : {}),
  };
  return { front, body, bodyLine: end + 2 };
}

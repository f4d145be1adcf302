import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ALWAYS_PII_TRAITS, PropertiesFile } from '../../schemas/properties-file';
import { PurposesFile } from '../../schemas/purposes-file';
import { CampaignFile } from '../../schemas/rules/campaign-file';
import { SegmentFile } from '../../schemas/rules/segment-file';
import { DEFAULT_PURPOSES_FILE, PurposeCatalog } from '../consent/purposes';
import { AppError } from '../errors';
import { DEFAULT_PROPERTIES_FILE, PropertiesPolicy } from '../privacy/properties-policy';
import { TemplateSet } from '../email/templates';
import { checkRuleSet, type ParsedRuleFile } from './load-checks';
import { RuleSource } from './load-source';
import type { LoadedFile, RuleProblem, RuleSet, RuleSetLoad } from './rule-set';

/**
 * Reads a rules directory as one rule set: purposes.yaml, properties.yaml, segments/, campaigns/ and
 * templates/. Every file is parsed and the set is checked as a whole (references, cycles,
 * unreachable steps); every problem is collected with its file, line and column, so a marketer
 * fixes them all in one pass. A rule set with any problem is refused as a whole.
 *
 * Missing files and folders mean the built-in defaults (no segments, no campaigns), as they do for
 * the engine's start-up; `consentflow rules check` refuses a directory that does not exist.
 */
export function loadRuleSet(dir: string): RuleSetLoad {
  const root = path.resolve(dir);
  if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) {
    throw new AppError('CONFIG_INVALID', `${dir} is not a directory: expected the rules directory (RULES_DIR)`);
  }
  const problems: RuleProblem[] = [];
  const hashes = new Map<string, string>();
  const read = (relative: string): RuleSource | undefined => {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(root, relative));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      problems.push({ file: relative, line: 1, column: 1, message: `cannot read the file: ${(err as Error).message}` });
      return undefined;
    }
    hashes.set(relative, sha256(bytes));
    const source = new RuleSource(relative, bytes.toString('utf8'));
    problems.push(...source.syntaxProblems);
    return source.syntaxProblems.length === 0 ? source : undefined;
  };
  const parse = <T>(source: RuleSource | undefined, schema: z.ZodType<T>): T | undefined => {
    if (!source) return undefined;
    const parsed = source.parse<T>(schema);
    if (parsed.ok) return parsed.value;
    problems.push(...parsed.problems);
    return undefined;
  };

  const purposesExists = fs.existsSync(path.join(root, 'purposes.yaml'));
  const purposesFile = purposesExists ? parse<PurposesFile>(read('purposes.yaml'), PurposesFile) : DEFAULT_PURPOSES_FILE;
  const purposes = purposesFile && new PurposeCatalog(purposesFile);
  const propertiesExists = fs.existsSync(path.join(root, 'properties.yaml'));
  const propertiesFile = propertiesExists ? parse<PropertiesFile>(read('properties.yaml'), PropertiesFile) : DEFAULT_PROPERTIES_FILE;
  const pii = new Set([...ALWAYS_PII_TRAITS, ...(propertiesFile?.traits.pii ?? [])]);
  const traitNames = new Set((propertiesFile?.traits.allow ?? []).filter((name) => !pii.has(name)));

  const brokenSegmentIds = new Set<string>();
  const loadFolder = <T extends { id: string }>(folder: string, schema: z.ZodType<T>, broken?: Set<string>) => {
    const files: Array<ParsedRuleFile<T>> = [];
    for (const name of listFiles(root, folder).filter((n) => RULE_FILE.test(n))) {
      const relative = `${folder}/${name}`;
      const stem = name.replace(RULE_FILE, '');
      const source = read(relative);
      const file = parse(source, schema);
      if (source && file) files.push({ source, file, stem });
      else if (broken) {
        // References to a file that has problems of its own are not reported a second time.
        broken.add(stem);
        const id = (source?.data as { id?: unknown } | undefined)?.id;
        if (typeof id === 'string') broken.add(id);
      }
    }
    return files;
  };
  const segments = loadFolder<SegmentFile>('segments', SegmentFile, brokenSegmentIds);
  const campaigns = loadFolder<CampaignFile>('campaigns', CampaignFile);

  // Every file under templates/ is part of the version; templates are the `<name>.html` files
  // (`_` files are layouts and partials, `<name>.txt` a template's text part: engine/email/templates.ts).
  const templates = new Map<string, string>();
  for (const name of listFiles(root, 'templates')) {
    const relative = `templates/${name}`;
    const template = path.parse(name).name;
    // Only `<name>.html` names a template; anything else is the template checker's to judge.
    if (name.startsWith('_') || !name.endsWith('.html')) {
      try {
        hashes.set(relative, sha256(fs.readFileSync(path.join(root, relative))));
      } catch (err) {
        problems.push({ file: relative, line: 1, column: 1, message: `cannot read the file: ${(err as Error).message}` });
      }
      continue;
    }
    const first = templates.get(template);
    if (first) {
      problems.push({ file: relative, line: 1, column: 1, message: `template "${template}" is also ${first}: keep one file per template name` });
      continue;
    }
    try {
      hashes.set(relative, sha256(fs.readFileSync(path.join(root, relative))));
      templates.set(template, relative);
    } catch (err) {
      problems.push({ file: relative, line: 1, column: 1, message: `cannot read the file: ${(err as Error).message}` });
    }
  }

  problems.push(
    ...checkRuleSet({
      purposes,
      traits: propertiesFile ? { allow: traitNames, pii } : undefined,
      segments,
      campaigns,
      brokenSegmentIds,
      templates,
    }),
  );
  // The templates themselves: Liquid syntax, front matter, and only allowed variables (no PII).
  // (Checked against the traits properties.yaml keeps, so only once that file is valid.)
  const emails = propertiesFile ? TemplateSet.load(root, traitNames) : undefined;
  if (emails && !emails.ok) problems.push(...emails.problems);
  if (problems.length > 0 || !purposes || !propertiesFile || !emails?.ok) return { ok: false, problems: sortProblems(problems) };

  const loaded = <T extends { id: string }>(files: ReadonlyArray<ParsedRuleFile<T>>) =>
    new Map<string, LoadedFile<T>>(
      files.map(({ source, file }) => [file.id, Object.freeze({ file, path: source.file, hash: hashes.get(source.file) as string })]),
    );
  const ruleSet: RuleSet = Object.freeze({
    dir: root,
    purposes,
    properties: new PropertiesPolicy(propertiesFile),
    traitNames,
    segments: loaded(segments),
    campaigns: loaded(campaigns),
    templates,
    emails: emails.templates,
    version: sha256(
      [...hashes]
        .map(([file, hash]) => `${file}\0${hash}`)
        .sort()
        .join('\n'),
    ),
  });
  return { ok: true, ruleSet };
}

/** `segments/<id>.yaml`, `.yml` or `.json`. */
const RULE_FILE = /\.(ya?ml|json)$/;

/** The regular, non-hidden files of a folder of the rules directory, by name; none if it is missing. */
function listFiles(root: string, folder: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(root, folder), { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
  return entries
    .filter((entry) => !entry.name.startsWith('.') && (entry.isFile() || (entry.isSymbolicLink() && isFile(path.join(root, folder, entry.name)))))
    .map((entry) => entry.name)
    .sort();
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** By file, line and column; problems at one place keep the order they were found in. */
export function sortProblems(problems: readonly RuleProblem[]): RuleProblem[] {
  return [...problems].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line || a.column - b.column));
}

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { AppError } from '../../engine/errors';
import { loadRuleSet } from '../../engine/rules/load';
import type { CommandContext } from './commands';
import { registerRulesSimulateCommand } from './rules-simulate-command';

/**
 * `consentflow rules …`: commands on the marketer's files that need no PostgreSQL, Redis or keys,
 * so marketers run them on their own machine and in their CI.
 */

/** What main.ts lends a command group: its context and the wrapper that turns a result into the exit code. */
export interface CommandWiring {
  /** Configuration, a logger on stderr and `print` (stdout) for a one-shot command. */
  readonly context: () => CommandContext;
  /** Wraps an action so that the exit code it returns becomes the process's. */
  readonly run: <A extends unknown[]>(action: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;
}

/** Adds the `rules` group with `check`, and returns it so that further `rules` commands join it. */
export function registerRulesCommands(program: Command, wiring: CommandWiring): Command {
  const rules = program
    .command('rules')
    .description("the marketer's files in RULES_DIR: campaigns, segments, templates (no database, Redis or keys needed)");
  rules
    .command('check')
    .description('check every rule file; print each problem as file:line:column message (exit 1 if any)')
    .argument('[dir]', 'the rules directory (default: RULES_DIR, else ./rules)')
    .action(wiring.run((dir: string | undefined) => rulesCheckCommand(wiring.context(), dir)));
  registerRulesSimulateCommand(rules, wiring);
  return rules;
}

export async function rulesCheckCommand(ctx: CommandContext, dir: string | undefined): Promise<number> {
  const root = dir === undefined ? ctx.config.rulesDir : path.resolve(dir);
  if (!fs.existsSync(root)) {
    throw new AppError('CONFIG_INVALID', `no rules directory at ${displayPath(root)}${dir === undefined ? ' (RULES_DIR)' : ''}`);
  }
  if (!fs.statSync(root).isDirectory()) throw new AppError('CONFIG_INVALID', `${displayPath(root)} is not a directory: expected the rules directory`);
  const loaded = loadRuleSet(root);
  if (!loaded.ok) {
    for (const p of loaded.problems) ctx.print(`${displayPath(path.join(root, p.file))}:${p.line}:${p.column} ${p.message}`);
    ctx.print(plural(loaded.problems.length, 'problem'));
    return 1;
  }
  const { ruleSet } = loaded;
  const counts = [
    plural(ruleSet.purposes.names.length, 'purpose'),
    plural(ruleSet.segments.size, 'segment'),
    plural(ruleSet.campaigns.size, 'campaign'),
    plural(ruleSet.templates.size, 'template'),
  ];
  ctx.print(`rules ok: ${counts.join(', ')} (version ${ruleSet.version.slice(0, 8)})`);
  return 0;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Relative to the working directory when inside it (`rules/campaigns/x.yaml`), else absolute. */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

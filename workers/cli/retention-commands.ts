import type { Command } from 'commander';
import { loadKeys } from '../../engine/config';
import { applyRetention, type RetentionOutcome } from '../../engine/privacy/retention/apply';
import { planRetention, type RetentionPlan } from '../../engine/privacy/retention/plan';
import { retentionPolicy } from '../../engine/privacy/retention/policy';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { loadRules } from '../../engine/runtime/rules';
import { openServices } from '../../engine/runtime/services';
import { auditCommand } from './audit-actor';
import type { CommandContext } from './commands';

/**
 * `consentflow retention plan | run`: storage limitation (GDPR Art. 5(1)(e)) on the command line.
 * The plan is a dry run that needs PostgreSQL only; the run is what the daily job does.
 */

const n = (count: number) => count.toLocaleString('en-US');

function printPlan(ctx: CommandContext, plan: RetentionPlan, batchSize: number): void {
  ctx.print(`retention plan at ${plan.at} (a dry run: nothing was changed)`);
  ctx.print('');
  ctx.print(`raw events: ${plan.events.partitions.length} partition(s), ${n(plan.events.rows)} rows`);
  for (const p of plan.events.partitions) {
    ctx.print(`  app.${p.name}  ${p.from.slice(0, 10)} to ${p.to.slice(0, 10)}  ${n(p.rows)} rows${p.estimated ? ' (estimate)' : ''}`);
  }
  ctx.print(`  rule: ${plan.events.rule}`);
  ctx.print(`decisions: ${n(plan.decisions.rows)} rows`);
  for (const g of plan.decisions.byRetention) {
    ctx.print(`  ${n(g.rows)} citing at longest ${g.retention}${g.purposes.length ? ` (${g.purposes.join(', ')})` : ''}, made before ${g.before.slice(0, 10)}`);
  }
  ctx.print(`  rule: ${plan.decisions.rule}`);
  ctx.print(`unconfirmed double opt-in requests: ${n(plan.confirmations.rows)}`);
  ctx.print(`  rule: ${plan.confirmations.rule}`);
  ctx.print(`segment rows: ${n(plan.segmentStates.rows)}`);
  ctx.print(`  rule: ${plan.segmentStates.rule}`);
  ctx.print(`inactive profiles: ${n(plan.inactiveProfiles.profiles)} (${n(plan.inactiveProfiles.thisRun)} at the next run, RETENTION_BATCH_SIZE=${batchSize})`);
  ctx.print(`  rule: ${plan.inactiveProfiles.rule}`);
  ctx.print('kept:');
  for (const k of plan.kept) ctx.print(`  ${k.data}: ${k.rule}`);
}

async function planCommand(ctx: CommandContext, options: { json?: boolean }): Promise<number> {
  const policy = retentionPolicy(ctx.config, loadRules(ctx.config).purposes);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const plan = await planRetention(databases.db, policy);
    if (options.json) ctx.print(JSON.stringify(plan));
    else printPlan(ctx, plan, policy.batchSize);
    return 0;
  });
}

function printOutcome(ctx: CommandContext, o: RetentionOutcome): void {
  ctx.print(
    `retention run at ${o.at}: ${o.partitionsDropped.length} event partition(s) dropped (${n(o.eventRowsDropped)} rows)` +
      `, ${n(o.decisionsDeleted)} decisions, ${n(o.confirmationsDeleted)} unconfirmed double opt-in requests and ${n(o.segmentStatesDeleted)} segment rows deleted` +
      `, ${n(o.erasuresRequested)} inactive profile(s) put up for erasure`,
  );
  if (o.partitionsDropped.length) ctx.print(`  dropped: ${o.partitionsDropped.map((p) => `app.${p}`).join(', ')}`);
  if (o.partitionsBusy.length) ctx.print(`  busy, left for the next run: ${o.partitionsBusy.map((p) => `app.${p}`).join(', ')}`);
  if (o.erasuresAlreadyOpen) ctx.print(`  ${n(o.erasuresAlreadyOpen)} inactive profile(s) already being erased`);
  if (o.profilesNotErasable) ctx.print(`  ${n(o.profilesNotErasable)} inactive profile(s) with no identifier in the vault could not be put up for erasure`);
  if (o.erasuresRequested) ctx.print('  the erasure worker erases them and signs a receipt each (`consentflow subject erase-status ID`)');
}

async function runCommand(ctx: CommandContext, options: { json?: boolean }): Promise<number> {
  const keys = loadKeys(ctx.config, ctx.log);
  const services = await openServices({ config: ctx.config, keys, log: ctx.log, searchPath: ctx.env.PATH ?? '' });
  try {
    const outcome = await applyRetention(services, retentionPolicy(ctx.config, services.rules.purposes));
    // Run by hand, it deletes data: who ran it is in the audit log (the daily job is the engine's own).
    await auditCommand(services.databases.db, keys, { action: 'retention.run', outcome: 'ok', detail: { erasuresRequested: outcome.erasuresRequested } }, ctx.log);
    if (options.json) ctx.print(JSON.stringify(outcome));
    else printOutcome(ctx, outcome);
    return 0;
  } finally {
    await services.releasers.releaseAll(ctx.log, ctx.config.shutdownTimeoutMs);
  }
}

export function registerRetentionCommands(
  program: Command,
  run: <A extends unknown[]>(action: (...args: A) => Promise<number>) => (...args: A) => Promise<void>,
  context: () => CommandContext,
): void {
  const retention = program.command('retention').description('storage limitation (GDPR Art. 5(1)(e)): what goes, and when (README "Retention")');
  retention
    .command('plan')
    .description('what a retention run would remove now, and the rule for each (a dry run; counts only, never who)')
    .option('--json', 'print JSON')
    .action(run((options: { json?: boolean }) => planCommand(context(), options)));
  retention
    .command('run')
    .description('run retention once now, as the daily job does (RETENTION_CRON)')
    .option('--json', 'print JSON')
    .action(run((options: { json?: boolean }) => runCommand(context(), options)));
}

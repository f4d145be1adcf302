import type { Command } from 'commander';
import { verifyAuditChain } from '../../engine/audit/verify';
import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import type { CommandContext } from './commands';

type Run = <A extends unknown[]>(action: (...args: A) => Promise<number>) => (...args: A) => Promise<void>;

const HEAD = /^([1-9][0-9]{0,18}):([A-Za-z0-9_-]{43})$/;

/**
 * `consentflow audit verify`: walks the hash chain of the audit log and says where it breaks.
 * Exit 0 when whole, 4 when not. `--head SEQ:HASH` (a head recorded earlier, e.g. from the process
 * log or a previous run) also catches the removal of the newest entries.
 */
export async function auditVerifyCommand(ctx: CommandContext, options: { head?: string; json?: boolean }): Promise<number> {
  const expected = options.head === undefined ? undefined : HEAD.exec(options.head);
  if (options.head !== undefined && !expected) {
    throw new AppError('VALIDATION_FAILED', `--head '${options.head}': expected SEQ:HASH as a previous \`audit verify\` printed it, e.g. 42:${'A'.repeat(43)}`);
  }
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const result = await verifyAuditChain(databases.db, keys);
    const problems = [...result.problems];
    if (expected) {
      const [, seq, hash] = expected;
      const kept = await databases.db.selectFrom('app.audit_log').select('hash').where('seq', '=', seq!).executeTakeFirst();
      if (!kept) problems.push({ seq: seq!, message: `entry ${seq}: the recorded head is missing (the newest entries were removed)` });
      else if (kept.hash.toString('base64url') !== hash) problems.push({ seq: seq!, message: `entry ${seq}: its hash differs from the recorded head (the chain was rewritten from there)` });
    }
    const ok = problems.length === 0;
    if (options.json) ctx.print(JSON.stringify({ ...result, ok, problems }));
    else {
      ctx.print(`${ok ? 'audit log verified' : 'AUDIT LOG BROKEN'}: ${result.entries} entries${result.head ? `, head ${result.head.seq}:${result.head.hash}` : ''}`);
      for (const p of problems) ctx.print(`  ${p.message}`);
      if (result.head) ctx.print('keep the head outside this database; `audit verify --head SEQ:HASH` later also catches removed newest entries');
    }
    return ok ? 0 : 4;
  });
}

export function registerAuditCommands(program: Command, run: Run, context: () => CommandContext): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('check the hash chain of the audit log and print where it breaks (exit 4 if it does)')
    .option('--head <seq:hash>', 'a head recorded earlier, to catch removed newest entries')
    .option('--json', 'print JSON')
    .action(run((options: { head?: string; json?: boolean }) => auditVerifyCommand(context(), options)));
}

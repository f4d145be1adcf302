import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { loadKeys } from '../../engine/config';
import { AppError } from '../../engine/errors';
import { openSubjectExport } from '../../engine/privacy/export/document';
import { exportIdentifier } from '../../engine/privacy/export/subject-ids';
import { subjectTarget } from '../../engine/audit/targets';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { SubjectExportRequest } from '../../schemas/subject-export';
import { auditCommand } from './audit-actor';
import type { CommandContext } from './commands';
import type { CommandWiring } from './rules-commands';

interface ExportOptions {
  email?: string;
  userId?: string;
  anonymousId?: string;
  reason?: string;
}

/** The request's fields as the command line spells them, for errors. */
const FLAGS: Record<string, string> = { email: '--email', userId: '--user-id', anonymousId: '--anonymous-id', reason: '--reason' };

/** Adds `subject export` to the `subject` group. */
export function registerSubjectExportCommand(subject: Command, wiring: CommandWiring): void {
  subject
    .command('export')
    .description('write everything stored about one person to stdout as one JSON document (GDPR Art. 15, 20)')
    .option('--email <email>', "the person's email address")
    .option('--user-id <id>', 'the userId a site sent')
    .option('--anonymous-id <id>', 'an anonymousId (cookie or device id)')
    .requiredOption('--reason <text>', 'why: the ticket or letter of the request (kept in the document and the audit log; no personal data)')
    .action(wiring.run((options: ExportOptions) => subjectExportCommand(wiring.context(), options)));
}

/**
 * A privacy_officer path run on the server by an operator: `consentflow subject export --email X >
 * file.json`. The document goes to stdout as it is read, so a person with many events costs a page
 * of them in memory; messages go to stderr.
 */
export async function subjectExportCommand(ctx: CommandContext, options: ExportOptions, out: Writable = process.stdout): Promise<number> {
  const parsed = SubjectExportRequest.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const flag = FLAGS[String(issue?.path[0])] ?? '';
    if (issue?.message.startsWith('expected exactly one')) throw new AppError('BAD_REQUEST', 'give exactly one of --email, --user-id, --anonymous-id');
    throw new AppError('VALIDATION_FAILED', `${flag}: ${issue?.message ?? 'invalid'}`);
  }
  const keys = loadKeys(ctx.config, ctx.log);
  return withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
    const exported = await openSubjectExport(databases, keys, exportIdentifier(parsed.data), { reason: parsed.data.reason });
    if (!exported) {
      process.stderr.write('consentflow: no profile is known for that identifier; nothing was exported\n');
      return 3;
    }
    // Decryption outside the email worker is audited before the first byte leaves (DESIGN.md
    // invariant 5): whose (a keyed pseudonym), why, and which shell user ran it.
    await auditCommand(databases.db, keys, {
      action: 'subject.export',
      target: subjectTarget(keys, exported.profileId),
      outcome: 'ok',
      reason: parsed.data.reason,
      detail: { decrypted: true, pendingMerges: exported.pendingMerges.length },
    }, ctx.log);
    // pipeline waits for the terminal (drain) and stops on a closed pipe (`| head`); stdout stays open.
    await pipeline(Readable.from(exported.chunks(), { objectMode: false }), out, { end: false });
    return 0;
  });
}

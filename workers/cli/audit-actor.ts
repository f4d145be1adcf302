import { appendAudit, type AuditEntryInput, type HeadLog } from '../../engine/audit/append';
import type { Keys } from '../../engine/config';
import type { DbOrTrx } from '../../engine/db/types';

/**
 * Who ran a command, for the audit log: the numeric uid of the shell user, not the login name (an
 * employee's name is personal data; the uid is mapped to a person by whoever runs the server).
 */
export function cliActor(): string {
  return `cli:uid:${typeof process.getuid === 'function' ? process.getuid() : 'unknown'}`;
}

/** Appends one audit entry for a command line action. */
export async function auditCommand(db: DbOrTrx, keys: Keys, entry: Omit<AuditEntryInput, 'actor'>, log?: HeadLog): Promise<void> {
  await appendAudit(db, keys, [{ actor: cliActor(), ...entry }], log);
}

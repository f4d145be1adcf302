import { loadKeys } from '../../engine/config';
import { verifyLink } from '../../engine/consent/links';
import { unsubscribeWithToken } from '../../engine/consent/unsubscribe';
import { MAX_HEADER_BYTES, subjectTokens } from '../../engine/email/unsubscribe-mail';
import { AppError, isUnavailableError } from '../../engine/errors';
import { withMigratedDatabases } from '../../engine/runtime/database-only';
import { loadRules } from '../../engine/runtime/rules';
import type { CommandContext } from './commands';

// sysexits.h, which mail servers read from a pipe's exit status: 65 bounces the message (the
// sender learns why), 75 has the server keep it and try again later.
const EX_USAGE = 64;
const EX_DATAERR = 65;
const EX_TEMPFAIL = 75;

export interface MailInput extends AsyncIterable<Buffer | string> {
  readonly isTTY?: boolean;
}

/** The message's start (its header section is what is read), draining the rest so the sender sees no broken pipe. */
async function readHead(input: MailInput): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    if (size >= MAX_HEADER_BYTES) continue;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    chunks.push(bytes);
    size += bytes.length;
  }
  return Buffer.concat(chunks).subarray(0, MAX_HEADER_BYTES);
}

/**
 * `consentflow unsubscribe-mail`: one RFC 5322 message on stdin, as a mail server's pipe or alias
 * delivers what arrives at UNSUBSCRIBE_MAILTO (e.g. `unsubscribe: "|consentflow unsubscribe-mail"`).
 * The signed token in its Subject is verified and the same withdrawal as the one-click POST applied.
 * One line out; exit 0 when done (or nothing was left to do), 65 when the message holds no valid
 * token (nothing changed), 75 when the database is unreachable (the mail server retries).
 */
export async function unsubscribeMailCommand(ctx: CommandContext, input: MailInput, printError: (line: string) => void): Promise<number> {
  if (input.isTTY) {
    printError('consentflow: unsubscribe-mail reads one email message on stdin, from a mail server (e.g. an alias `"|consentflow unsubscribe-mail"`)');
    return EX_USAGE;
  }
  const refuse = (why: string) => {
    printError(`consentflow: unsubscribe-mail: ${why}; nothing was changed`);
    return EX_DATAERR;
  };
  const found = subjectTokens(await readHead(input));
  if (!found.subject) return refuse('the message has no Subject, where the unsubscribe token goes');
  if (found.tokens.length === 0) return refuse('no unsubscribe token in the Subject (expected "unsubscribe TOKEN", as the List-Unsubscribe mailto writes it)');
  const keys = loadKeys(ctx.config, ctx.log);
  const token = found.tokens.find((t) => verifyLink(keys.linkSigning, 'unsub', t).ok);
  if (!token) return refuse('the unsubscribe token in the Subject is incomplete or has been altered');
  const rules = loadRules(ctx.config);
  try {
    return await withMigratedDatabases(ctx.config, ctx.log, async (databases) => {
      const outcome = await unsubscribeWithToken({ db: databases.db, linkSigningKey: keys.linkSigning, rules }, { token, via: 'mail' });
      if (!outcome.ok) {
        // Verified above, so only `gone`: an erased person has nothing left to unsubscribe from.
        ctx.print(outcome.reason === 'gone' ? 'nothing to unsubscribe: the send and its person are no longer held' : 'nothing to unsubscribe');
        return 0;
      }
      // The outbox rows the rules wrote (if any) are relayed by the running engine's next tick.
      if (outcome.automationError !== undefined) {
        ctx.log.error({ error: outcome.automationError }, 'the rules failed after an unsubscribe; it is recorded and the person marked for a re-check');
      }
      ctx.print(
        outcome.withdrawn.length > 0
          ? `unsubscribed: withdrew ${outcome.withdrawn.join(', ')} (send ${outcome.sendId})`
          : `already unsubscribed: nothing left to withdraw (send ${outcome.sendId})`,
      );
      return 0;
    });
  } catch (err) {
    if ((err instanceof AppError && err.code === 'UNAVAILABLE') || isUnavailableError(err)) {
      printError(`consentflow: unsubscribe-mail: the database is unreachable (${(err as Error).message}); nothing was changed, the mail server should try again later`);
      return EX_TEMPFAIL;
    }
    throw err;
  }
}

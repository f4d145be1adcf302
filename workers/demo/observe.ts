import { findProfileId, type SubjectIdentifier } from '../../engine/identity/lookup';
import type { Services } from '../../engine/runtime/services';
import { type OutboxMessage, readOutbox } from './eml';

/** A step of the demo that did not happen: the message says which and what was seen instead. */
export class DemoStepError extends Error {}

/**
 * Polls `check` until it gives a value, with a deadline (never a fixed sleep): the engine's workers
 * run beside the story in this process, so each effect is awaited, not assumed.
 */
export async function until<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    try {
      const result = await check();
      if (result !== undefined && result !== false) return result;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new DemoStepError(`waited ${Math.round(timeoutMs / 1000)} s for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** What the story reads back from the engine's stores: always pseudonymous, never decrypted. */
export class Observer {
  private readonly seenDecisions = new Set<string>();
  private readonly seenMail = new Set<string>();

  constructor(
    private readonly services: Services,
    private readonly outboxDir: string,
    private readonly say: (line: string) => void,
  ) {}

  profileId(ids: readonly SubjectIdentifier[]): Promise<string | undefined> {
    return findProfileId(this.services.databases.vaultDb, this.services.keys, ids);
  }

  /** The rules' decisions about the person not shown yet, oldest first: which rule, what, why. */
  async showDecisions(profileId: string): Promise<number> {
    const rows = await this.services.databases.db
      .selectFrom('app.decisions')
      .select(['id', 'action', 'allowed', 'reason', 'purposes', 'missing', 'rule_id', 'outcome'])
      .where('profile_id', '=', profileId)
      .orderBy('decided_at')
      .orderBy('id')
      .execute();
    let shown = 0;
    for (const row of rows) {
      if (this.seenDecisions.has(String(row.id))) continue;
      this.seenDecisions.add(String(row.id));
      shown++;
      const rule = row.rule_id ? `rule ${row.rule_id}` : 'consent gate';
      const purposes = row.purposes.length ? ` [needs ${row.purposes.join(', ')}${row.missing.length ? `; missing ${row.missing.join(', ')}` : ''}]` : '';
      this.say(`   decision (${rule}): ${row.action} → ${row.allowed ? 'allowed' : 'refused'}${row.outcome ? ` (${row.outcome})` : ''}: ${row.reason}${purposes}`);
    }
    return shown;
  }

  /** Waits for a decision row whose action matches, then shows every new one. */
  async awaitDecision(profileId: string, action: RegExp, what: string): Promise<void> {
    await until(
      async () => (await this.services.databases.db.selectFrom('app.decisions').select('action').where('profile_id', '=', profileId).execute()).some((r) => action.test(r.action)),
      what,
    );
    await this.showDecisions(profileId);
  }

  async segments(profileId: string): Promise<string[]> {
    const rows = await this.services.databases.db
      .selectFrom('app.segment_state')
      .select('segment_id')
      .where('profile_id', '=', profileId)
      .where('member', '=', true)
      .orderBy('segment_id')
      .execute();
    return rows.map((r) => r.segment_id);
  }

  async consent(profileId: string): Promise<string> {
    const rows = await this.services.databases.db
      .selectFrom('app.consent_current')
      .select(['purpose', 'decision'])
      .where('profile_id', '=', profileId)
      .orderBy('purpose')
      .execute();
    return rows.length ? rows.map((r) => `${r.purpose}: ${r.decision}`).join(', ') : 'nothing recorded';
  }

  async storedEvents(profileId: string): Promise<number> {
    const row = await this.services.databases.db
      .selectFrom('app.events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('profile_id', '=', profileId)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async anonymousCount(type: 'page' | 'track'): Promise<number> {
    const rows = await this.services.databases.db.selectFrom('app.event_counts').select('count').where('type', '=', type).execute();
    return rows.reduce((sum, r) => sum + Number(r.count), 0);
  }

  /** Waits for a new email in DATA_DIR/outbox to `to` whose subject matches, and shows it. */
  async awaitMail(to: string, subject: RegExp, what: string): Promise<OutboxMessage> {
    const message = await until(
      () => readOutbox(this.outboxDir).find((m) => !this.seenMail.has(m.file) && m.to.includes(to) && subject.test(m.subject)),
      `${what} in ${this.outboxDir}`,
    );
    this.seenMail.add(message.file);
    this.say(`   email out: "${message.subject}" to ${message.to}`);
    this.say(`              ${message.file}`);
    return message;
  }
}

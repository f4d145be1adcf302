import type { Kysely, Transaction } from 'kysely';
import type { AcceptedEvent } from '../../schemas/segment';
import type { Keys } from '../config';
import type { Databases } from '../db/connect';
import type { Database, VaultDatabase, VaultDbOrTrx } from '../db/types';
import { eventIdentityKeys } from '../identity/keys';
import { ResolutionConflict, resolveProfiles } from '../identity/resolve';
import type { PropertiesPolicy } from '../privacy/properties-policy';
import { writeFields } from '../vault/fields';
import { applyProfileMerges, claimReceipts, countEvents, insertEvents, upsertProfiles } from './app-writes';
import { runAutomationIsolated } from '../automation/isolated';
import type { AutomationDeps, AutomationOutcome } from '../automation/run-automation';
import { applyBatchConsent, carriesBrowserSignal, type ConsentStepOptions } from './consent-step';
import { lockProfiles, markMergesApplied, touchedProfiles } from './merges';
import type { EventPartitions } from './partitions';
import { eventRows, piiWrites, profileUpserts, receiptMessageId, storedMessageId } from './rows';

export interface BatchDeps {
  readonly databases: Databases;
  readonly keys: Keys;
  readonly policy: PropertiesPolicy;
  readonly partitions: EventPartitions;
  readonly consent: ConsentStepOptions;
  /** The rule set at work: segments, triggers, journeys. */
  readonly automation: AutomationDeps;
}

export interface BatchOutcome {
  readonly stored: number;
  readonly duplicates: number;
  /** Events PostgreSQL refused, set aside in app.event_rejections so the rest could be stored. */
  readonly rejected: number;
  /** Stored without a link to their profile: the person's consent (or a browser signal) forbade it. */
  readonly unlinked: number;
  /** Double opt-in confirmations created, whose email is still to be sent. */
  readonly confirmations: readonly string[];
  /** What the rules did: enrolments, skips, exits, sends scheduled, segment changes. */
  readonly automation?: AutomationOutcome;
  /** The rules failed for this batch (its events are stored all the same); the tick tries again. */
  readonly automationFailed?: string;
}

const NOTHING_STORED = { stored: 0, rejected: 0, unlinked: 0, confirmations: [] } as const;

/** The in-transaction hook failed: the batch rolled back whole; nothing of it is written. */
export class BatchHookFailed extends Error {
  override readonly name = 'BatchHookFailed';
  constructor(cause: unknown) {
    super(`the batch was not written: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** What a batch wrote, as its transaction is about to commit. */
export interface BatchWrites {
  /** The events written (duplicates left out), each with its profile (null: none, e.g. an erased person's). */
  readonly events: readonly AcceptedEvent[];
  readonly profileIds: ReadonlyArray<string | null>;
  /** Profiles this batch created. */
  readonly created: ReadonlySet<string>;
}

export interface BatchHooks {
  /**
   * Runs last in each transaction that writes events, so what it writes (an audit entry for an admin
   * or import write of personal data) commits with them or not at all. Not called when every event
   * was a duplicate.
   */
  readonly inTransaction?: (app: Transaction<Database>, writes: BatchWrites) => Promise<void>;
}

const MAX_CONFLICT_RETRIES = 5;
// SQLSTATE 40P01 deadlock_detected, 40001 serialization_failure: the transaction was rolled back whole.
const RETRYABLE_SQLSTATES = new Set(['40P01', '40001']);

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof ResolutionConflict) return true;
  const code = sqlState(err);
  return code !== undefined && RETRYABLE_SQLSTATES.has(code);
}

/**
 * A value PostgreSQL refuses (class 22 data exception, 23 integrity violation, 54 program limit):
 * retrying the same data can never succeed.
 */
function isDataError(err: unknown): boolean {
  const code = sqlState(err);
  return code !== undefined && /^(22|23|54)/.test(code);
}

const receiptKey = (e: AcceptedEvent) => `${e.sourceId}\u0000${storedMessageId(e)}`;

/** Keeps the first of each (source, messageId) in the batch; later copies are duplicates. */
function firstOccurrences(events: readonly AcceptedEvent[]): AcceptedEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => {
    const id = receiptKey(e);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * What the events worker does with one job: deduplicate, resolve identities, split PII into the
 * vault, record the consent events carry, minimize the rest and store it (linked to the profile only
 * where consent allows); set-based SQL, one transaction per batch (two when the vault
 * has its own database: the vault commits first, and everything it does is idempotent on retry).
 */
export async function processEventBatch(deps: BatchDeps, events: readonly AcceptedEvent[], hooks: BatchHooks = {}): Promise<BatchOutcome> {
  await deps.partitions.ensure(events.map((e) => new Date(e.occurredAt)));
  try {
    return await processWithRetries(deps, events, hooks);
  } catch (err) {
    if (!isDataError(err)) throw err;
  }
  // Some event holds a value PostgreSQL refuses. Events of many people share a batch, so one bad
  // event must not fail the others: store them one by one and set aside the ones refused.
  let stored = 0;
  let duplicates = 0;
  let rejected = 0;
  let unlinked = 0;
  const confirmations: string[] = [];
  for (const event of events) {
    try {
      const outcome = await processWithRetries(deps, [event], hooks);
      stored += outcome.stored;
      duplicates += outcome.duplicates;
      unlinked += outcome.unlinked;
      confirmations.push(...outcome.confirmations);
    } catch (err) {
      if (!isDataError(err)) throw err;
      await deps.databases.db
        .insertInto('app.event_rejections')
        .values({
          source_id: event.sourceId,
          message_id: storedMessageId(event),
          received_at: new Date(event.receivedAt),
          reason: `SQLSTATE ${sqlState(err)}`,
        })
        .execute();
      rejected++;
    }
  }
  return { stored, duplicates, rejected, unlinked, confirmations };
}

async function processWithRetries(deps: BatchDeps, events: readonly AcceptedEvent[], hooks: BatchHooks): Promise<BatchOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await processOnce(deps, events, hooks);
    } catch (err) {
      if (!isRetryable(err) || attempt >= MAX_CONFLICT_RETRIES) throw err;
    }
  }
}

async function processOnce(deps: BatchDeps, events: readonly AcceptedEvent[], hooks: BatchHooks): Promise<BatchOutcome> {
  const { db, vaultDb } = deps.databases;
  const sharedDatabase = (vaultDb as unknown) === (db as unknown);
  let mergesToMark: string[] = [];
  const outcome = await db.transaction().execute(async (app): Promise<BatchOutcome> => {
    const unique = firstOccurrences(events);
    const receiptIds = unique.map((e) => receiptMessageId(deps.keys.pseudonym, storedMessageId(e)));
    const fresh = await claimReceipts(
      app,
      unique.map((e, i) => ({ sourceId: e.sourceId, messageId: receiptIds[i] as string, receivedAt: new Date(e.receivedAt) })),
    );
    const todo = unique.filter((e, i) => fresh.has(`${e.sourceId}\u0000${receiptIds[i]}`));
    if (todo.length === 0) return { ...NOTHING_STORED, duplicates: events.length };

    const vaultWork = async (vault: VaultDbOrTrx) => {
      const resolution = await resolveProfiles(
        vault,
        deps.keys.master,
        todo.map((e) => ({ ...eventIdentityKeys(deps.keys.pseudonym, e.event), sourceId: e.sourceId })),
      );
      await writeFields(vault, piiWrites(deps.policy, todo, resolution));
      // With a separate vault database the vault commits first and its locks go with it. Before
      // that, take the same profiles' locks on the app side, so a concurrent batch merging one of
      // them waits until this batch's app writes are committed (and then moves them too).
      if (!sharedDatabase) await lockProfiles(app, touchedProfiles(resolution));
      return resolution;
    };
    const resolution = sharedDatabase
      ? await vaultWork(app as unknown as Transaction<VaultDatabase>)
      : await (vaultDb as Kysely<VaultDatabase>).transaction().execute(vaultWork);

    await upsertProfiles(app, profileUpserts(deps.policy, todo, resolution));
    await applyProfileMerges(app, resolution.merges);
    const consent = await applyBatchConsent(app, deps.consent, todo, resolution.profileIds);
    const rows = eventRows(deps.policy, todo, consent.linkedProfileIds);
    await insertEvents(app, rows.filter((r) => r.profileId !== null));
    // An event that may not be tied to a person (their consent, a browser signal, or no usable
    // identifier) is kept as an anonymous count only (GDPR Art. 5(1)(c)).
    await countEvents(app, rows.filter((r) => r.profileId === null));
    // The rules, on the state this batch committed with it. An event carrying a browser privacy
    // signal triggers nothing, but its person's segments are still re-evaluated (an objection ends them).
    const automation = await runAutomationIsolated(
      app,
      deps.automation,
      todo.flatMap((e, i) => {
        const profileId = resolution.profileIds[i];
        const row = rows[i];
        if (!profileId || !row) return [];
        const triggers = carriesBrowserSignal(e, deps.consent.honorDnt) ? [] : [{ type: row.type, name: row.name, properties: row.properties, occurredAt: row.occurredAt }];
        return [{ profileId, events: triggers }];
      }),
      new Date(),
      // upsertProfiles locked every profile of the batch in this transaction, and the consent step
      // just read their consent.
      { profilesLocked: true, consent: consent.state },
    );
    const merged = resolution.merges.map((m) => m.loser);
    if (sharedDatabase) await markMergesApplied(app as unknown as Transaction<VaultDatabase>, merged);
    else mergesToMark = merged;
    try {
      await hooks.inTransaction?.(app, { events: todo, profileIds: resolution.profileIds, created: resolution.created });
    } catch (err) {
      // The hook's failure (its audit entry refused) is not the events' data: never set them aside for it.
      throw new BatchHookFailed(err);
    }
    return {
      stored: todo.length,
      duplicates: events.length - todo.length,
      rejected: 0,
      unlinked: consent.unlinked,
      confirmations: consent.confirmations,
      ...(automation.ok ? { automation: automation.outcome } : { automationFailed: automation.error }),
    };
  });
  // With a separate vault database, merges are marked applied only once the app side committed; a
  // crash in between leaves them to applyPendingMerges.
  if (mergesToMark.length > 0) await markMergesApplied(vaultDb, mergesToMark);
  return outcome;
}

